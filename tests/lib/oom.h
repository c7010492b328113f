/* Test helper: an allocator that fails on a chosen allocation. */
#ifndef TESTS_LIB_OOM_H
#define TESTS_LIB_OOM_H

/* Install an allocator whose nth malloc/realloc from now on (1 = the next
 * one) and every later one fail, until oom_uninstall(). n <= 0 never fails
 * but still counts. */
void oom_install(long n);

/* Restore the libc allocator; returns how many allocations were attempted
 * since oom_install(). */
long oom_uninstall(void);

#endif /* TESTS_LIB_OOM_H */
