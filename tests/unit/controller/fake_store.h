/* TEST-ONLY fake segment stores for the controller's unit tests
 * (test_driver.c, test_cutcheck.c): in-process inproc:// RPC servers that
 * answer the workflow driver's SS_* calls from a table, with injected
 * failures and WRONGHOST redirects, and a one-replica controller with a
 * driver around them. */
#ifndef TESTS_UNIT_CONTROLLER_FAKE_STORE_H
#define TESTS_UNIT_CONTROLLER_FAKE_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "controller/driver.h"
#include "tests/unit/controller/svc_fixture.h"

#define MAX_SEGS 64

/* A fake segment store. */
struct fake {
	char url[64];
	struct rpc_server *srv;
	pthread_mutex_t lock;
	struct {
		char name[128];
		bool sealed;
		uint64_t length;
		uint64_t start;
	} segs[MAX_SEGS];
	size_t n;
	int fail_next;        /* answer EIO to this many calls */
	const char *redirect; /* answer EWRONGHOST redirecting here */
	int calls, redirects, failures, merges, truncates, deletes;
};

/* Start fake n (its URL names n and this process). A created segment is
 * 100 + strlen(name) bytes long. */
void fake_start(struct fake *f, int n);
void fake_stop(struct fake *f);

/* Whether the fake holds segment name. */
bool fake_has(struct fake *f, const char *name);

/* Register store id at url with the controller behind api (4 containers). */
void register_store(struct ctl_api *api, uint64_t id, const char *url);

/* A cluster of one replica, a driver and fake stores. */
struct env {
	struct fx f;
	struct driver *d;
	struct fake s[2];
};

/* Start the replica, stores fakes registered as stores 1.., a driver. */
void env_start(struct env *e, int stores);
void env_stop(struct env *e, int stores);

#endif
