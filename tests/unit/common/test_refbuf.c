/* Unit tests for common/refbuf.c: reference-counted byte buffers. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/refbuf.h"
#include "tests/lib/oom.h"

/* A new buffer has one reference and its size; the last release frees it
 * (LeakSanitizer would name a leak). */
static void test_refbuf_new_release(void **state)
{
	(void)state;
	struct refbuf *rb = refbuf_new(100);
	assert_non_null(rb);
	assert_int_equal(rb->size, 100);
	assert_int_equal(atomic_load(&rb->refs), 1);
	memset(rb->data, 7, rb->size);
	assert_ptr_equal(refbuf_hold(rb), rb);
	assert_int_equal(atomic_load(&rb->refs), 2);
	refbuf_release(rb);
	assert_int_equal(atomic_load(&rb->refs), 1);
	assert_int_equal(rb->data[99], 7);
	refbuf_release(rb);
	refbuf_release(NULL); /* no-op */
	struct refbuf *empty = refbuf_new(0);
	assert_non_null(empty);
	assert_int_equal(empty->size, 0);
	refbuf_release(empty);
}

/* refbuf_copy copies; out of memory and an impossible size give NULL. */
static void test_refbuf_copy_and_oom(void **state)
{
	(void)state;
	const uint8_t src[5] = {1, 2, 3, 4, 5};
	struct refbuf *rb = refbuf_copy(src, sizeof(src));
	assert_non_null(rb);
	assert_memory_equal(rb->data, src, sizeof(src));
	refbuf_release(rb);
	oom_install(1);
	assert_null(refbuf_new(10));
	assert_null(refbuf_copy(src, sizeof(src)));
	oom_uninstall();
	assert_null(refbuf_new(SIZE_MAX));
	assert_null(refbuf_new(SIZE_MAX - sizeof(struct refbuf) + 1));
}

#define THREADS 4
#define ROUNDS 20000

static void *holder(void *arg)
{
	struct refbuf *rb = arg;
	for (int i = 0; i < ROUNDS; i++) {
		refbuf_release(refbuf_hold(refbuf_hold(rb)));
		refbuf_release(rb);
	}
	refbuf_release(rb); /* the reference the creator gave this thread */
	return NULL;
}

/* Threads holding and releasing concurrently never free early: each
 * thread gets a reference, the creator drops its own first, and the
 * buffer is freed by whichever thread ends last (ASan catches a use after
 * free, LSan a leak). */
static void test_refbuf_threads(void **state)
{
	(void)state;
	struct refbuf *rb = refbuf_new(64);
	assert_non_null(rb);
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		refbuf_hold(rb);
		assert_int_equal(pthread_create(&t[i], NULL, holder, rb), 0);
	}
	refbuf_release(rb);
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_refbuf_new_release),
	        cmocka_unit_test(test_refbuf_copy_and_oom),
	        cmocka_unit_test(test_refbuf_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
