/* strata-diskbench: print the disk's O_DIRECT+O_DSYNC append rates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/diskbench.h"
#include "common/version.h"
#include "strata/error.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: strata-diskbench [DIR] [SECONDS]\n"
	        "Sequential synchronous writes (O_DIRECT|O_DSYNC) of 4 KiB,\n"
	        "64 KiB, 256 KiB and 1 MiB into a temporary file in DIR\n"
	        "(default .), SECONDS per size and mode (default 2), to a\n"
	        "growing file (append) and to a preallocated one. Prints a\n"
	        "Markdown table. DIR must be on the disk to measure (not\n"
	        "tmpfs).\n");
}

int main(int argc, char **argv)
{
	if (argc > 1 &&
	    (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		strata_print_version(stdout, "strata-diskbench");
		return 0;
	}
	if (argc > 1 && argv[1][0] == '-' && argv[1][1] != '\0') {
		fprintf(stderr,
		        "strata-diskbench: unknown option %s; see --help\n",
		        argv[1]);
		return 2;
	}
	if (argc > 3) {
		usage(stderr);
		return 2;
	}
	const char *dir = argc > 1 ? argv[1] : ".";
	double secs = argc > 2 ? strtod(argv[2], NULL) : 2.0;
	if (secs <= 0 || secs > 600) {
		fprintf(stderr,
		        "strata-diskbench: SECONDS must be in (0, "
		        "600], got %s\n",
		        argv[2]);
		return 2;
	}
	static const size_t blocks[] = {4096, 65536, 262144, 1048576};
	printf("| mode | block | MB/s | writes/s | p50 ms | p99 ms |\n");
	printf("| --- | ---: | ---: | ---: | ---: | ---: |\n");
	for (int pre = 0; pre <= 1; pre++) {
		for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]);
		     i++) {
			struct disk_result r;
			char errmsg[STRATA_ERRMSG_SIZE];
			int rc = disk_bench(dir, blocks[i], pre, secs,
			                    UINT64_C(1) << 30, &r, errmsg);
			if (rc != 0) {
				fprintf(stderr, "strata-diskbench: %s\n",
				        errmsg);
				return 1;
			}
			printf("| %s | %zu KiB | %.1f | %.0f | %.3f | %.3f |\n",
			       pre ? "prealloc" : "append", blocks[i] / 1024,
			       r.mb_s, r.writes_s, r.p50_ns / 1e6,
			       r.p99_ns / 1e6);
			fflush(stdout);
		}
	}
	return 0;
}
