/* Unit tests for client/frame.c: event framing and reassembly. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "client/frame.h"
#include "strata/error.h"

/* Build three framed events "a", "" and "hello" at base 100. */
static size_t build(uint8_t *out)
{
	const char *ev[3] = {"a", "", "hello"};
	size_t off = 0;
	for (int i = 0; i < 3; i++) {
		size_t l = strlen(ev[i]);
		frame_header(out + off, (uint32_t)l);
		memcpy(out + off + 4, ev[i], l);
		off += 4 + l;
	}
	return off;
}

/* Events split across every possible pair of chunks come out whole, with
 * their segment offsets. */
static void test_frame_asm_next_across_chunks(void **state)
{
	(void)state;
	uint8_t data[64];
	size_t n = build(data);
	for (size_t cut = 0; cut <= n; cut++) {
		struct frame_asm fa;
		const uint8_t *p;
		size_t len;
		uint64_t off;
		int got = 0;
		frame_asm_init(&fa, 100, 1024);
		assert_int_equal(frame_asm_feed(&fa, data, cut), 0);
		while (frame_asm_next(&fa, &p, &len, &off) == 0) {
			got++;
		}
		assert_int_equal(frame_asm_feed(&fa, data + cut, n - cut), 0);
		while (frame_asm_next(&fa, &p, &len, &off) == 0) {
			got++;
			if (got == 3) {
				assert_int_equal(len, 5);
				assert_memory_equal(p, "hello", 5);
				assert_int_equal(off, 100 + 5 + 4);
			}
		}
		assert_int_equal(got, 3);
		assert_int_equal(frame_asm_position(&fa), 100 + n);
		assert_int_equal(frame_asm_end(&fa), 100 + n);
		assert_int_equal(frame_asm_pending(&fa), 0);
		frame_asm_close(&fa);
	}
}

/* A frame longer than the limit is corruption; a partial one waits. */
static void test_frame_asm_next_corrupt_and_partial(void **state)
{
	(void)state;
	struct frame_asm fa;
	uint8_t hdr[4];
	const uint8_t *p;
	size_t len;
	uint64_t off;
	frame_asm_init(&fa, 0, 16);
	frame_header(hdr, 10);
	assert_int_equal(frame_asm_feed(&fa, hdr, 4), 0);
	assert_int_equal(frame_asm_next(&fa, &p, &len, &off), STRATA_EAGAIN);
	assert_int_equal(frame_asm_pending(&fa), 4);
	frame_asm_reset(&fa, 50);
	frame_header(hdr, 17);
	assert_int_equal(frame_asm_feed(&fa, hdr, 4), 0);
	assert_int_equal(frame_asm_next(&fa, &p, &len, &off), STRATA_ECORRUPT);
	assert_int_equal(frame_asm_position(&fa), 50);
	frame_asm_close(&fa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_frame_asm_next_across_chunks),
	        cmocka_unit_test(test_frame_asm_next_corrupt_and_partial),
	};
	return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
