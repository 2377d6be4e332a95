// Package command runs an external delivery command the way Postfix's
// pipe_command() does for local(8) and pipe(8): the message on standard
// input, a limited amount of standard output and standard error captured
// for the bounce report, a fresh environment with a fixed PATH, its own
// session (so the whole process group can be killed), a time limit, and
// the exit status interpreted per <sysexits.h> or an enhanced status code
// at the start of the command's output.
package command
