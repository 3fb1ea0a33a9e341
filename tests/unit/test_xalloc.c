/* xalloc: the wrappers allocate like their libc namesakes, and a failure
 * ends the process with the one line xalloc.h promises. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xalloc.h"

static void test_allocates(void **state)
{
	(void) state;
	char *s = xstrdup("walcount");
	assert_string_equal(s, "walcount");
	s = xrealloc(s, 100);
	assert_string_equal(s, "walcount");
	free(s);

	int *z = xcalloc(64, sizeof *z);
	for (int i = 0; i < 64; i++)
		assert_int_equal(z[i], 0);
	free(z);
	/* Zero-sized requests still return something to free. */
	void *p = xmalloc(0), *q = xcalloc(0, 8);
	assert_non_null(p);
	assert_non_null(q);
	free(p);
	free(q);
}

/* A calloc whose size overflows cannot succeed: the child must not return
 * from it. Under a sanitizer the allocator reports it itself, so the line
 * is only checked when the child aborted. */
static void test_failure_aborts(void **state)
{
	int fds[2];
	char line[256] = "";

	(void) state;
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		free(xcalloc(SIZE_MAX / 2, 4));
		_exit(0);
	}
	close(fds[1]);
	ssize_t n = read(fds[0], line, sizeof line - 1);
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) {
		assert_true(n > 0);
		line[n] = '\0';
		assert_non_null(strstr(line, "out of memory allocating 18446744073709551615 bytes"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allocates),
		cmocka_unit_test(test_failure_aborts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
