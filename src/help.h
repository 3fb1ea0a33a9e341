/* help: the general help text and each command's own page (usage line, what
 * it does, its options, its exit codes), for --help and `walcount help`. */
#ifndef WALCOUNT_HELP_H
#define WALCOUNT_HELP_H

#include <stdbool.h>
#include <stdio.h>

void help_general(FILE *f);

/* Writes command name's page to f; false (nothing written) when no command
 * has that name. */
bool help_command(FILE *f, const char *name);

#endif
