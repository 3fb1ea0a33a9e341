#include "version.h"

/* Set by the Makefile for this object alone; absent when compiled by hand. */
#ifndef WALCOUNT_REVISION
#define WALCOUNT_REVISION "unknown"
#endif

const char walcount_revision[] = WALCOUNT_REVISION;
