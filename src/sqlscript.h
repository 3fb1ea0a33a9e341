/* sqlscript: the statements of an SQL script written with every statement
 * ending in ';' at the end of a line (sql/recount.sql,
 * sql/reconcile_stage.sql), for callers that send them one at a time: the
 * server sends a script's results only with its last statement's, unless a
 * message (a NOTICE) makes it flush early, and then a client that reads the
 * first result would block on the next. Pure, no I/O. */
#ifndef WALCOUNT_SQLSCRIPT_H
#define WALCOUNT_SQLSCRIPT_H

/* The next statement of the script at *p, in a new string the caller
 * frees, or NULL at its end; *p moves past it. A piece holding only
 * comments and blanks is skipped. A comment line must not end with ';'. */
char *sqlscript_next(const char **p);

#endif
