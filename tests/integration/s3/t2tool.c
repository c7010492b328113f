/* Test driver: one tier-2 op from the command line, for scripted checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/plugin.h"

/*
 * usage: t2tool <plugin> <config> <op> [args]
 *   config: the plugin's "key=value" lines, separated by ';'
 *   create NAME | write NAME OFFSET FILE | read NAME OFFSET LEN FILE |
 *   stat NAME | list PREFIX | truncate NAME LEN | concat TARGET SRC... |
 *   delete NAME
 * stat prints "<length>", list prints "<name> <length>" lines, read writes
 * the bytes to FILE. The exit status is the Strata error code (0 = ok);
 * the error message goes to stderr as "<CODE>: <message>".
 */

static int print_cb(void *arg, const char *name,
                    const struct strata_tier2_chunk_info *info)
{
	(void)arg;
	printf("%s %llu\n", name, (unsigned long long)info->length);
	return 0;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		exit(100);
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = strata_malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "read %s failed\n", path);
		exit(100);
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static int run(struct tier2 *t, int argc, char **argv, char *err)
{
	const char *op = argv[3];
	const char *name = argc > 4 ? argv[4] : "";
	if (strcmp(op, "create") == 0) {
		return tier2_create(t, name, err);
	}
	if (strcmp(op, "write") == 0 && argc == 7) {
		size_t len;
		char *buf = slurp(argv[6], &len);
		int rc = tier2_write(t, name, strtoull(argv[5], NULL, 10), buf,
		                     len, err);
		strata_free(buf);
		return rc;
	}
	if (strcmp(op, "read") == 0 && argc == 8) {
		size_t len = strtoull(argv[6], NULL, 10);
		size_t got = 0;
		char *buf = strata_malloc(len + 1);
		int rc = tier2_read(t, name, strtoull(argv[5], NULL, 10), buf,
		                    len, &got, err);
		if (rc == 0) {
			FILE *f = fopen(argv[7], "wb");
			if (f == NULL || fwrite(buf, 1, got, f) != got) {
				rc = 100;
			}
			if (f != NULL) {
				fclose(f);
			}
		}
		strata_free(buf);
		return rc;
	}
	if (strcmp(op, "stat") == 0) {
		struct strata_tier2_chunk_info info;
		int rc = tier2_stat(t, name, &info, err);
		if (rc == 0) {
			printf("%llu\n", (unsigned long long)info.length);
		}
		return rc;
	}
	if (strcmp(op, "list") == 0) {
		return tier2_list(t, name, print_cb, NULL, err);
	}
	if (strcmp(op, "truncate") == 0 && argc == 6) {
		return tier2_truncate(t, name, strtoull(argv[5], NULL, 10),
		                      err);
	}
	if (strcmp(op, "concat") == 0 && argc >= 6) {
		return tier2_concat(t, name, (const char *const *)&argv[5],
		                    (size_t)(argc - 5), err);
	}
	if (strcmp(op, "delete") == 0) {
		return tier2_delete(t, name, err);
	}
	fprintf(stderr, "t2tool: bad op or arguments: %s\n", op);
	return 101;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s <plugin> <k=v;k=v> <op> [args]\n",
		        argv[0]);
		return 2;
	}
	char *config = strata_strdup(argv[2]);
	for (char *p = config; *p != '\0'; p++) {
		if (*p == ';') {
			*p = '\n';
		}
	}
	char err[STRATA_ERRMSG_SIZE] = "";
	struct tier2 *t = NULL;
	int rc = tier2_load_open(argv[1], NULL, config, &t, err);
	if (rc == 0) {
		rc = run(t, argc, argv, err);
		tier2_close(t);
	}
	if (rc != 0 && rc < 100) {
		fprintf(stderr, "%s: %s\n", strata_error_name(rc), err);
	}
	strata_free(config);
	return rc;
}
