/* version: what this build is, for --version and the build_info metric. */
#ifndef WALCOUNT_VERSION_H
#define WALCOUNT_VERSION_H

#define WALCOUNT_VERSION "0.1.0"

/* `git describe --always --dirty` of the tree it was built from (the
 * Makefile's REVISION), "unknown" when built outside git. */
extern const char walcount_revision[];

#endif
