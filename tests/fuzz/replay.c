/* replay: runs a fuzz target's LLVMFuzzerTestOneInput over files, without
 * libFuzzer, so the kept crashers and the seeds are regression tests in any
 * build (make fuzz-replay: gcc with ASan/UBSan). Arguments are files or
 * directories (their regular files, not recursive). Prints one line per
 * input before running it, so a crash names its input, and exits 0 when all
 * ran. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long size;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t) size + 1)) == NULL || fread(buf, 1, (size_t) size, f) != (size_t) size) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		if (f)
			fclose(f);
		free(buf);
		return 1;
	}
	fclose(f);
	fprintf(stderr, "replay: %s (%ld bytes)\n", path, size);
	/* An exact-size copy, as libFuzzer passes it: overreads are caught. */
	uint8_t *exact = malloc(size ? (size_t) size : 1);
	if (exact == NULL) {
		free(buf);
		return 1;
	}
	memcpy(exact, buf, (size_t) size);
	free(buf);
	LLVMFuzzerTestOneInput(exact, (size_t) size);
	free(exact);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The regular files of dir, sorted, so runs are repeatable. */
static int run_dir(const char *dir, int *count)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0, cap = 0;
	int failed = 0;

	if (d == NULL) {
		fprintf(stderr, "replay: cannot open %s\n", dir);
		return 1;
	}
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (e->d_name[0] == '.' || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (n == cap && (names = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names)) == NULL)
			return 1;
		names[n++] = strdup(path);
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp);
	for (size_t i = 0; i < n; i++) {
		failed |= run_file(names[i]);
		(*count)++;
		free(names[i]);
	}
	free(names);
	return failed;
}

int main(int argc, char **argv)
{
	int failed = 0, count = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			failed |= run_dir(argv[i], &count);
		} else {
			failed |= run_file(argv[i]);
			count++;
		}
	}
	printf("replay %s: %d inputs ran%s\n", argc > 0 ? argv[0] : "?", count, failed ? ", some unreadable" : "");
	return failed;
}
