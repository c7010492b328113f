/* libFuzzer harness: the codec plugins' decode (plugins/codec/) on
 * arbitrary bytes. Byte 0 picks the codec (zstd, lz4, gzip), bytes 1..4
 * (u32le, at most 1 MiB) the decoded length the event records, the rest
 * is the encoding. Decode must return 0 or STRATA_ECORRUPT (STRATA_ENOMEM
 * aside) with a message naming the codec, and never touch bytes outside
 * its buffers; a success must survive a re-encode and decode. The
 * plugins are dlopen()ed from CODEC_PLUGIN_DIR on the first call. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OUT (1u << 20)

static const char *const names[] = {"zstd", "lz4", "gzip"};
#define N_CODECS (sizeof(names) / sizeof(names[0]))
static const struct strata_codec_ops *ops[N_CODECS];

static void load(void)
{
	for (size_t i = 0; i < N_CODECS; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/codec-%s.so", CODEC_PLUGIN_DIR,
		         names[i]);
		void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		void *sym = h != NULL ? dlsym(h, STRATA_CODEC_ENTRY) : NULL;
		if (sym == NULL) {
			fprintf(stderr, "fuzz_codec: cannot load %s: %s\n",
			        path, dlerror());
			abort();
		}
		ops[i] = ((strata_codec_entry_fn)sym)();
		if (ops[i] == NULL ||
		    ops[i]->abi_version != STRATA_CODEC_ABI_VERSION ||
		    strcmp(ops[i]->name, names[i]) != 0) {
			fprintf(stderr, "fuzz_codec: %s: unexpected table\n",
			        path);
			abort();
		}
	}
}

/* An error's message: terminated within STRATA_ERRMSG_SIZE and naming
 * the codec and operation. */
static void check_msg(const struct strata_codec_ops *o, const char *op,
                      const char *msg)
{
	size_t n = strlen(o->name);
	if (memchr(msg, '\0', STRATA_ERRMSG_SIZE) == NULL ||
	    strncmp(msg, o->name, n) != 0 || strncmp(msg + n, ": ", 2) != 0 ||
	    strncmp(msg + n + 2, op, strlen(op)) != 0) {
		abort();
	}
}

/* out (out_len bytes) decoded successfully: encode it again at the
 * default level and it must decode to the same bytes. */
static void round_trip(const struct strata_codec_ops *o, const uint8_t *out,
                       size_t out_len)
{
	char msg[STRATA_ERRMSG_SIZE];
	size_t cap = o->bound(out_len);
	uint8_t *enc = malloc(cap > 0 ? cap : 1);
	uint8_t *back = malloc(out_len > 0 ? out_len : 1);
	size_t n = 0;
	if (enc == NULL || back == NULL) {
		goto done;
	}
	int rc = o->encode(o->level_default, out, out_len, enc, cap, &n, msg);
	if (rc == STRATA_ENOMEM) {
		goto done;
	}
	if (rc != 0 || n > cap) {
		abort();
	}
	rc = o->decode(enc, n, back, out_len, msg);
	if (rc == STRATA_ENOMEM) {
		goto done;
	}
	if (rc != 0 || (out_len > 0 && memcmp(back, out, out_len) != 0)) {
		abort();
	}
done:
	free(back);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (ops[0] == NULL) {
		load();
	}
	if (size < 5) {
		return 0;
	}
	const struct strata_codec_ops *o = ops[data[0] % N_CODECS];
	uint32_t want = (uint32_t)data[1] | (uint32_t)data[2] << 8 |
	                (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
	size_t out_len = want % (MAX_OUT + 1);

	/* Exactly sized copies, so ASan sees any access past either end. */
	size_t len = size - 5;
	uint8_t *in = malloc(len > 0 ? len : 1);
	uint8_t *out = malloc(out_len > 0 ? out_len : 1);
	if (in == NULL || out == NULL) {
		free(in);
		free(out);
		return 0;
	}
	if (len > 0) {
		memcpy(in, data + 5, len);
	}
	char msg[STRATA_ERRMSG_SIZE];
	memset(msg, 0xff, sizeof(msg));
	int rc = o->decode(in, len, out, out_len, msg);
	if (rc == 0) {
		round_trip(o, out, out_len);
	} else if (rc == STRATA_ECORRUPT || rc == STRATA_ENOMEM) {
		check_msg(o, "decode", msg);
	} else {
		abort();
	}
	free(out);
	free(in);
	return 0;
}
