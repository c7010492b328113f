/* Regression driver for libFuzzer harnesses, built with any compiler: runs
 * LLVMFuzzerTestOneInput over a seed corpus, then over seeded random and
 * mutated inputs. Flags follow libFuzzer's spelling so one command line
 * works for both:
 *   <harness>_regress [-runs=N] [-seed=S] [-max_len=L] [-max_total_time=T]
 *                     [DIR_OR_FILE...]
 * STRATA_FUZZ_SEED=S overrides the seed (default 1: ctest is repeatable).
 * Each input is a fresh malloc of its exact size, so ASan sees overreads;
 * on a crash under a sanitizer the input is saved to ./crash-<seed>-<run>
 * (replay: <harness>_regress crash-...). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

#define MAX_CORPUS 4096

struct input {
	uint8_t *data;
	size_t len;
};

static struct input corpus[MAX_CORPUS];
static size_t n_corpus;
static uint64_t rng_state;
static unsigned long long seed_used;

/* The input being run, for the death callback. */
static const uint8_t *cur_data;
static size_t cur_len;
static unsigned long long cur_run;

static uint64_t rnd(void)
{
	uint64_t x = rng_state; /* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static size_t rnd_below(size_t n)
{
	return n == 0 ? 0 : (size_t)(rnd() % n);
}

static void on_death(void)
{
	char name[96];
	snprintf(name, sizeof(name), "crash-%llu-%llu", seed_used, cur_run);
	FILE *f = fopen(name, "wb");
	if (f != NULL) {
		if (cur_len != 0) {
			fwrite(cur_data, 1, cur_len, f);
		}
		fclose(f);
		fprintf(stderr, "fuzz driver: input saved to %s\n", name);
	}
}

static void run_one(const uint8_t *data, size_t len, unsigned long long run)
{
	/* Exact-size copy: reading past the end is an ASan error. */
	uint8_t *copy = malloc(len != 0 ? len : 1);
	if (copy == NULL) {
		abort();
	}
	if (len != 0) {
		memcpy(copy, data, len);
	}
	cur_data = copy;
	cur_len = len;
	cur_run = run;
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
}

static int load_file(const char *path, size_t max_len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "fuzz driver: cannot open %s\n", path);
		return -1;
	}
	uint8_t *buf = malloc(max_len != 0 ? max_len : 1);
	if (buf == NULL) {
		abort();
	}
	size_t len = fread(buf, 1, max_len, f);
	fclose(f);
	if (n_corpus < MAX_CORPUS) {
		corpus[n_corpus].data = buf;
		corpus[n_corpus].len = len;
		n_corpus++;
	} else {
		free(buf);
	}
	return 0;
}

static int load_path(const char *path, size_t max_len)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "fuzz driver: no such corpus %s\n", path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		return load_file(path, max_len);
	}
	struct dirent **names;
	int n = scandir(path, &names, NULL, alphasort); /* stable order */
	if (n < 0) {
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			char full[4096];
			snprintf(full, sizeof(full), "%s/%s", path,
			         names[i]->d_name);
			load_file(full, max_len);
		}
		free(names[i]);
	}
	free(names);
	return 0;
}

static const uint8_t interesting[] = {0x00, 0x01, 0x02, 0x08, 0x0a, 0x12,
                                      0x1a, 0x7f, 0x80, 0xfe, 0xff};

/* Apply one random mutation to buf[0..*len) (capacity cap). */
static void mutate_once(uint8_t *buf, size_t *len, size_t cap)
{
	size_t n = *len;
	switch (rnd_below(8)) {
	case 0: /* flip a bit */
		if (n != 0) {
			buf[rnd_below(n)] ^= (uint8_t)(1u << rnd_below(8));
		}
		break;
	case 1: /* random byte */
		if (n != 0) {
			buf[rnd_below(n)] = (uint8_t)rnd();
		}
		break;
	case 2: /* interesting byte */
		if (n != 0) {
			buf[rnd_below(n)] =
			        interesting[rnd_below(sizeof(interesting))];
		}
		break;
	case 3: { /* insert random bytes */
		size_t k = 1 + rnd_below(8);
		if (n + k > cap) {
			break;
		}
		size_t at = rnd_below(n + 1);
		memmove(buf + at + k, buf + at, n - at);
		for (size_t i = 0; i < k; i++) {
			buf[at + i] = (uint8_t)rnd();
		}
		*len = n + k;
		break;
	}
	case 4: { /* delete a range */
		if (n == 0) {
			break;
		}
		size_t at = rnd_below(n);
		size_t k = 1 + rnd_below(n - at);
		memmove(buf + at, buf + at + k, n - at - k);
		*len = n - k;
		break;
	}
	case 5: /* truncate */
		*len = rnd_below(n + 1);
		break;
	case 6: { /* duplicate a range at the end */
		if (n == 0) {
			break;
		}
		size_t at = rnd_below(n);
		size_t k = 1 + rnd_below(n - at);
		if (n + k > cap) {
			break;
		}
		memcpy(buf + n, buf + at, k);
		*len = n + k;
		break;
	}
	default: { /* splice in part of another corpus entry */
		if (n_corpus == 0) {
			break;
		}
		const struct input *o = &corpus[rnd_below(n_corpus)];
		if (o->len == 0) {
			break;
		}
		size_t from = rnd_below(o->len);
		size_t k = 1 + rnd_below(o->len - from);
		size_t at = rnd_below(n + 1);
		if (at + k > cap) {
			break;
		}
		memcpy(buf + at, o->data + from, k);
		if (at + k > n) {
			*len = at + k;
		}
		break;
	}
	}
}

int main(int argc, char **argv)
{
	unsigned long long runs = 20000, seed = 1;
	size_t max_len = 4096;
	double max_time = 60;
	const char *env = getenv("STRATA_FUZZ_SEED");
	if (env != NULL && env[0] != '\0') {
		seed = strtoull(env, NULL, 0);
	}
	if (LLVMFuzzerInitialize != NULL) {
		LLVMFuzzerInitialize(&argc, &argv);
	}
	int n_paths = 0;
	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "-runs=", 6) == 0) {
			runs = strtoull(argv[i] + 6, NULL, 0);
		} else if (strncmp(argv[i], "-seed=", 6) == 0) {
			seed = strtoull(argv[i] + 6, NULL, 0);
		} else if (strncmp(argv[i], "-max_len=", 9) == 0) {
			max_len = (size_t)strtoull(argv[i] + 9, NULL, 0);
		} else if (strncmp(argv[i], "-max_total_time=", 16) == 0) {
			max_time = strtod(argv[i] + 16, NULL);
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "fuzz driver: unknown flag %s\n",
			        argv[i]);
			return 2;
		} else {
			if (load_path(argv[i], max_len) != 0) {
				return 2;
			}
			n_paths++;
		}
	}
	if (max_len == 0) {
		max_len = 1;
	}
	seed_used = seed;
	rng_state = seed != 0 ? seed : 0x9E3779B97F4A7C15ULL;
	if (__sanitizer_set_death_callback != NULL) {
		__sanitizer_set_death_callback(on_death);
	}
	printf("fuzz driver %s: seed %llu (STRATA_FUZZ_SEED or -seed= to "
	       "change), %zu corpus inputs from %d paths, %llu runs\n",
	       argv[0], seed, n_corpus, n_paths, runs);
	fflush(stdout);

	for (size_t i = 0; i < n_corpus; i++) {
		run_one(corpus[i].data, corpus[i].len, 0);
	}
	uint8_t *buf = malloc(max_len);
	if (buf == NULL) {
		abort();
	}
	clock_t start = clock();
	unsigned long long done = 0;
	for (; done < runs; done++) {
		size_t len;
		if (n_corpus == 0 || rnd_below(8) == 0) {
			len = rnd_below(max_len < 256 ? max_len + 1 : 257);
			for (size_t i = 0; i < len; i++) {
				buf[i] = (uint8_t)rnd();
			}
		} else {
			const struct input *base = &corpus[rnd_below(n_corpus)];
			len = base->len < max_len ? base->len : max_len;
			memcpy(buf, base->data, len);
		}
		size_t k = 1 + rnd_below(4);
		for (size_t i = 0; i < k; i++) {
			mutate_once(buf, &len, max_len);
		}
		run_one(buf, len, done + 1);
		if ((done & 1023) == 0 &&
		    (double)(clock() - start) / CLOCKS_PER_SEC > max_time) {
			printf("fuzz driver: stopped at -max_total_time=%g s\n",
			       max_time);
			break;
		}
	}
	free(buf);
	for (size_t i = 0; i < n_corpus; i++) {
		free(corpus[i].data);
	}
	printf("fuzz driver: %zu corpus + %llu generated inputs: no crash\n",
	       n_corpus, done);
	return 0;
}
