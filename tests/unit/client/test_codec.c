/* Unit tests for client/codec.c: loading codec plugins, the encoded-event
 * frame, and writers/iterators that encode and decode transparently (on
 * the fake cluster, with the real codec plugins of the build tree). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "client/codec.h"
#include "client/frame.h"
#include "fake_cluster.h"
#include "strata/segment.h"
#include "strata/writer.h"

#define SEG0 "sc/st/0.#epoch.0"

/* The codec ABI's table layout (append-only; strata/codec.h). */
_Static_assert(offsetof(struct strata_codec_ops, abi_version) == 0, "abi");
_Static_assert(offsetof(struct strata_codec_ops, reserved) == 4, "reserved");
_Static_assert(offsetof(struct strata_codec_ops, name) == 8, "name");
_Static_assert(offsetof(struct strata_codec_ops, encoding_id) == 16, "id");
_Static_assert(offsetof(struct strata_codec_ops, level_min) == 20, "min");
_Static_assert(offsetof(struct strata_codec_ops, level_max) == 24, "max");
_Static_assert(offsetof(struct strata_codec_ops, level_default) == 28,
               "default");
_Static_assert(offsetof(struct strata_codec_ops, bound) == 32, "bound");
_Static_assert(offsetof(struct strata_codec_ops, encode) == 40, "encode");
_Static_assert(offsetof(struct strata_codec_ops, decode) == 48, "decode");
_Static_assert(sizeof(struct strata_codec_ops) == 56, "size (ABI 1)");
_Static_assert(STRATA_CODEC_HEADER == 9 && STRATA_FRAME_ENCODED == 1u << 31,
               "frame format");

static const char *const names[] = {"zstd", "lz4", "gzip"};

/* Text that compresses well, n bytes. */
static void fill_text(uint8_t *p, size_t n, unsigned seed)
{
	static const char words[] = "sensor=42 temp=21.5 unit=C status=ok ";
	for (size_t i = 0; i < n; i++) {
		p[i] = (uint8_t)words[(i + seed) % (sizeof(words) - 1)];
	}
}

/* Bytes that do not compress. */
static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* A plugin directory without codecs fails with a message naming the file
 * and the fix; pointing at the build's plugins then loads it (a failed
 * load is not remembered). Runs first: loads are process-wide. */
static void test_missing_plugin_dir(void **state)
{
	(void)state;
	const struct strata_codec_ops *ops;
	char err[STRATA_ERRMSG_SIZE];
	setenv("STRATA_PLUGIN_DIR", "/nonexistent-strata-plugins", 1);
	assert_int_equal(codec_by_name("zstd", &ops, err), STRATA_EPLUGIN);
	assert_non_null(
	        strstr(err, "/nonexistent-strata-plugins/codec-zstd.so"));
	assert_non_null(strstr(err, "STRATA_PLUGIN_DIR"));
	setenv("STRATA_PLUGIN_DIR", CODEC_PLUGIN_DIR, 1);
	assert_int_equal(codec_by_name("zstd", &ops, err), 0);
	assert_string_equal(ops->name, "zstd");
	assert_int_equal(ops->encoding_id, STRATA_CODEC_ID_ZSTD);
}

static void test_lookup(void **state)
{
	(void)state;
	const struct strata_codec_ops *ops, *again;
	char err[STRATA_ERRMSG_SIZE];
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(codec_by_name(names[i], &ops, err), 0);
		assert_int_equal(codec_by_id(ops->encoding_id, &again, err), 0);
		assert_ptr_equal(ops, again);
	}
	assert_int_equal(codec_by_name("brotli", &ops, err), STRATA_ENOENT);
	assert_non_null(strstr(err, "'brotli'"));
	assert_non_null(strstr(err, "zstd, lz4, gzip"));
	assert_int_equal(codec_by_name(NULL, &ops, err), STRATA_ENOENT);
	assert_int_equal(codec_by_id(77, &ops, err), STRATA_ENOENT);
	assert_non_null(strstr(err, "encoding id 77"));
}

static void test_level(void **state)
{
	(void)state;
	const struct strata_codec_ops *ops;
	char err[STRATA_ERRMSG_SIZE];
	int lv;
	assert_int_equal(codec_by_name("gzip", &ops, err), 0);
	assert_int_equal(codec_level(ops, 0, &lv, err), 0);
	assert_int_equal(lv, ops->level_default);
	assert_int_equal(codec_level(ops, 9, &lv, err), 0);
	assert_int_equal(lv, 9);
	assert_int_equal(codec_level(ops, 10, &lv, err), STRATA_EINVAL);
	assert_non_null(strstr(err, "level 10 is outside 1..9"));
	assert_int_equal(codec_level(ops, -1, &lv, err), STRATA_EINVAL);
}

/* Encode -> frame -> decode, for every codec: text shrinks and is marked
 * encoded; random bytes and empty events stay plain. */
static void test_frame_round_trip(void **state)
{
	(void)state;
	char err[STRATA_ERRMSG_SIZE];
	size_t sizes[] = {0, 1, 13, 100, 1024, 65536, 1u << 20};
	struct buf dec;
	buf_init(&dec, 0);
	for (size_t i = 0; i < 3; i++) {
		const struct strata_codec_ops *ops;
		assert_int_equal(codec_by_name(names[i], &ops, err), 0);
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			for (int kind = 0; kind < 2; kind++) {
				size_t n = sizes[k];
				uint8_t *in = malloc(n + 1);
				if (kind == 0) {
					fill_text(in, n, (unsigned)k);
				} else {
					fill_random(in, n, k + 1);
				}
				size_t cap = codec_frame_bound(ops, n);
				uint8_t *fr = malloc(cap);
				size_t flen = 0;
				assert_int_equal(codec_frame_encode(
				                         ops,
				                         ops->level_default, in,
				                         n, fr, &flen, err),
				                 0);
				assert_true(flen <= cap);
				uint32_t w = rd32(fr);
				uint32_t l = w & ~STRATA_FRAME_ENCODED;
				assert_int_equal(l + 4, flen);
				bool enc = (w & STRATA_FRAME_ENCODED) != 0;
				if (kind == 0 && n >= 1024) {
					assert_true(enc);
					assert_true(flen < n / 2);
				}
				if (kind == 1 || n == 0) {
					assert_false(enc);
				}
				if (enc) {
					assert_int_equal(fr[4],
					                 STRATA_CODEC_PROTOCOL);
					assert_int_equal(rd32(fr + 5),
					                 ops->encoding_id);
					assert_int_equal(rd32(fr + 9), n);
					assert_int_equal(
					        codec_event_decode(fr + 4, l,
					                           1u << 21,
					                           &dec, err),
					        0);
					assert_int_equal(dec.len, n);
					assert_memory_equal(dec.data, in, n);
				} else {
					assert_int_equal(l, n);
					if (n > 0) {
						assert_memory_equal(fr + 4, in,
						                    n);
					}
				}
				free(fr);
				free(in);
			}
		}
	}
	buf_close(&dec);
}

/* What a reader meets in a damaged or foreign encoded event. */
static void test_decode_errors(void **state)
{
	(void)state;
	char err[STRATA_ERRMSG_SIZE];
	const struct strata_codec_ops *ops;
	assert_int_equal(codec_by_name("zstd", &ops, err), 0);
	uint8_t in[4096];
	fill_text(in, sizeof(in), 3);
	uint8_t fr[8192];
	size_t flen;
	assert_int_equal(
	        codec_frame_encode(ops, 3, in, sizeof(in), fr, &flen, err), 0);
	uint8_t *p = fr + 4;
	size_t len = flen - 4;
	struct buf dec;
	buf_init(&dec, 0);
	/* Short header, wrong protocol. */
	assert_int_equal(codec_event_decode(p, 5, 1u << 20, &dec, err),
	                 STRATA_ECORRUPT);
	assert_non_null(strstr(err, "no codec header"));
	p[0] = 7;
	assert_int_equal(codec_event_decode(p, len, 1u << 20, &dec, err),
	                 STRATA_ECORRUPT);
	p[0] = STRATA_CODEC_PROTOCOL;
	/* Decoded length beyond the limit: refused before decoding. */
	assert_int_equal(codec_event_decode(p, len, 4095, &dec, err),
	                 STRATA_ECORRUPT);
	assert_non_null(strstr(err, "decodes to 4096 bytes"));
	/* Unknown codec id. */
	p[1] = 99;
	assert_int_equal(codec_event_decode(p, len, 1u << 20, &dec, err),
	                 STRATA_ENOENT);
	assert_non_null(strstr(err, "encoding id 99"));
	p[1] = STRATA_CODEC_ID_ZSTD;
	/* A recorded length that lies, a cut body, garbage. */
	p[5] ^= 1;
	assert_int_equal(codec_event_decode(p, len, 1u << 20, &dec, err),
	                 STRATA_ECORRUPT);
	assert_non_null(strstr(err, "codec zstd could not decode"));
	p[5] ^= 1;
	assert_int_equal(codec_event_decode(p, len - 3, 1u << 20, &dec, err),
	                 STRATA_ECORRUPT);
	memset(p + STRATA_CODEC_HEADER, 0xAB, len - STRATA_CODEC_HEADER);
	assert_int_equal(codec_event_decode(p, len, 1u << 20, &dec, err),
	                 STRATA_ECORRUPT);
	buf_close(&dec);
}

static int setup(void **state)
{
	*state = fake_fixture_new(1);
	return *state != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	fake_fixture_free(*state);
	return 0;
}

/* Writers with each codec (and none) share one segment; the iterator
 * returns every event as written, in order, with exact offsets, and the
 * segment holds fewer bytes than the payloads. */
static void test_write_read_mixed(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	enum { PER = 50, EV = 2000 };
	uint8_t ev[EV];
	uint64_t payload = 0;
	for (int wi = 0; wi < 4; wi++) {
		struct strata_writer_config wc;
		strata_writer_config_default(&wc);
		wc.codec = wi < 3 ? names[wi] : NULL;
		struct strata_writer *w;
		assert_int_equal(
		        strata_writer_new(fx->c, "sc", "st", &wc, &w, err), 0);
		for (int i = 0; i < PER; i++) {
			size_t n = (size_t)(i * 37 % EV) + 1;
			fill_text(ev, n, (unsigned)(wi * PER + i));
			if (i % 10 == 9) {
				fill_random(ev, n, (uint64_t)i);
			}
			payload += n;
			assert_int_equal(strata_writer_write(w, "k", 1, ev, n,
			                                     NULL, NULL, err),
			                 0);
		}
		struct strata_writer_stats st;
		strata_writer_get_stats(w, &st);
		assert_int_equal(st.events_written, PER);
		if (wc.codec != NULL) {
			assert_true(st.stored_bytes < st.payload_bytes);
		} else {
			assert_int_equal(st.stored_bytes,
			                 st.payload_bytes + 4 * PER);
		}
		assert_int_equal(strata_writer_close(w, err), 0);
	}
	size_t seglen;
	fake_segment_data(fx->f, 0, &seglen);
	assert_true(seglen < payload);

	struct strata_event_iter *it;
	assert_int_equal(strata_event_iter_new(fx->c, SEG0, 0, UINT64_MAX, 4096,
	                                       &it, err),
	                 0);
	uint64_t next = 0;
	for (int wi = 0; wi < 4; wi++) {
		for (int i = 0; i < PER; i++) {
			struct strata_event e;
			assert_int_equal(strata_event_iter_next(it, 0, &e, err),
			                 0);
			size_t n = (size_t)(i * 37 % EV) + 1;
			fill_text(ev, n, (unsigned)(wi * PER + i));
			if (i % 10 == 9) {
				fill_random(ev, n, (uint64_t)i);
			}
			assert_non_null(e.data);
			assert_int_equal(e.len, n);
			assert_memory_equal(e.data, ev, n);
			assert_int_equal(e.offset, next);
			assert_true(e.next_offset > e.offset);
			next = e.next_offset;
		}
	}
	assert_int_equal(next, seglen);
	/* Resuming from an offset in the middle decodes from there. */
	strata_event_iter_free(it);
	assert_int_equal(
	        strata_event_iter_new(fx->c, SEG0, 0, UINT64_MAX, 0, &it, err),
	        0);
	struct strata_event e;
	for (int i = 0; i < PER + 3; i++) {
		assert_int_equal(strata_event_iter_next(it, 0, &e, err), 0);
	}
	uint64_t mid = e.next_offset;
	strata_event_iter_free(it);
	assert_int_equal(strata_event_iter_new(fx->c, SEG0, mid, UINT64_MAX, 0,
	                                       &it, err),
	                 0);
	assert_int_equal(strata_event_iter_next(it, 0, &e, err), 0);
	size_t n = (size_t)((PER + 3) % PER * 37 % EV) + 1;
	fill_text(ev, n, (unsigned)(PER + 3));
	assert_int_equal(e.len, n);
	assert_memory_equal(e.data, ev, n);
	strata_event_iter_free(it);
}

/* A bad codec name or level fails strata_writer_new, naming it. */
static void test_writer_bad_codec(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_writer_config wc;
	strata_writer_config_default(&wc);
	struct strata_writer *w = NULL;
	wc.codec = "snappy";
	assert_int_equal(strata_writer_new(fx->c, "sc", "st", &wc, &w, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "unknown codec 'snappy'"));
	wc.codec = "zstd";
	wc.codec_level = 42;
	assert_int_equal(strata_writer_new(fx->c, "sc", "st", &wc, &w, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "level 42 is outside 1..19"));
	assert_null(w);
}

/* An encoded event that does not decode stops the iterator at it with a
 * message naming the segment and the offset, and stays there. */
static void test_iter_corrupt_event(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_writer_config wc;
	strata_writer_config_default(&wc);
	wc.codec = "lz4";
	struct strata_writer *w;
	assert_int_equal(strata_writer_new(fx->c, "sc", "st", &wc, &w, err), 0);
	uint8_t ev[3000];
	for (int i = 0; i < 2; i++) {
		fill_text(ev, sizeof(ev), (unsigned)i);
		assert_int_equal(strata_writer_write(w, "k", 1, ev, sizeof(ev),
		                                     NULL, NULL, err),
		                 0);
	}
	assert_int_equal(strata_writer_close(w, err), 0);
	size_t seglen;
	uint8_t *seg = (uint8_t *)fake_segment_data(fx->f, 0, &seglen);
	uint32_t first = rd32(seg) & ~STRATA_FRAME_ENCODED;
	uint8_t *second = seg + 4 + first;
	assert_true((rd32(second) & STRATA_FRAME_ENCODED) != 0);
	second[4 + 5] ^= 0x10; /* its decoded length */

	struct strata_event_iter *it;
	assert_int_equal(
	        strata_event_iter_new(fx->c, SEG0, 0, UINT64_MAX, 0, &it, err),
	        0);
	struct strata_event e;
	assert_int_equal(strata_event_iter_next(it, 0, &e, err), 0);
	assert_int_equal(e.len, sizeof(ev));
	for (int k = 0; k < 2; k++) {
		assert_int_equal(strata_event_iter_next(it, 0, &e, err),
		                 STRATA_ECORRUPT);
		char want[64];
		snprintf(want, sizeof(want), "event at %u", 4 + first);
		assert_non_null(strstr(err, SEG0));
		assert_non_null(strstr(err, want));
		assert_int_equal(strata_event_iter_position(it), 4 + first);
	}
	strata_event_iter_free(it);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_missing_plugin_dir),
	        cmocka_unit_test(test_lookup),
	        cmocka_unit_test(test_level),
	        cmocka_unit_test(test_frame_round_trip),
	        cmocka_unit_test(test_decode_errors),
	        cmocka_unit_test_setup_teardown(test_write_read_mixed, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_writer_bad_codec, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_iter_corrupt_event, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
