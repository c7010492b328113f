/* TEST-ONLY raw client of the controller's wire API: sends requests the C
 * client would refuse before asking, so that tests can check what the
 * controller itself does with them.
 *
 * usage: ctl_raw URL truncate SCOPE STREAM NUMBER.EPOCH=OFFSET[,...]
 *
 * Prints "code=NAME done=0|1 message=TEXT" (the controller's answer) and
 * exits 0 when an answer came, 1 when none did (timeout, no connection:
 * the error is printed), 2 on usage errors.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rpc.h"
#include "strata/error.h"
#include "strata/v1/controller.pb-c.h"

#define MAX_POS 64

static int usage(void)
{
	fprintf(stderr, "usage: ctl_raw URL truncate SCOPE STREAM "
	                "NUMBER.EPOCH=OFFSET[,...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc != 6 || strcmp(argv[2], "truncate") != 0) {
		return usage();
	}
	Strata__V1__SegmentOffset pos[MAX_POS];
	Strata__V1__SegmentOffset *ptrs[MAX_POS];
	size_t n = 0;
	for (char *p = argv[5]; *p != '\0' && n < MAX_POS; n++) {
		unsigned number, epoch;
		long long off;
		int used = 0;
		if (sscanf(p, "%u.%u=%lld%n", &number, &epoch, &off, &used) !=
		    3) {
			return usage();
		}
		strata__v1__segment_offset__init(&pos[n]);
		pos[n].segment_id = (uint64_t)epoch << 32 | number;
		pos[n].offset = off;
		ptrs[n] = &pos[n];
		p += used;
		p += *p == ',';
	}
	Strata__V1__StreamCut cut = STRATA__V1__STREAM_CUT__INIT;
	cut.positions = ptrs;
	cut.n_positions = n;
	Strata__V1__TruncateStreamRequest q =
	        STRATA__V1__TRUNCATE_STREAM_REQUEST__INIT;
	q.scope = argv[3];
	q.stream = argv[4];
	q.cut = &cut;
	char err[STRATA_ERRMSG_SIZE] = "";
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.timeout_ms = 30000;
	struct rpc_client *cli;
	const char *urls[1] = {argv[1]};
	if (rpc_client_open(&cli, urls, 1, &o, err) != 0) {
		fprintf(stderr, "ctl_raw: %s\n", err);
		return 1;
	}
	ProtobufCMessage *m = NULL;
	int rc = rpc_call_pb(
	        cli, STRATA__V1__CONTROLLER_METHOD__CTL_TRUNCATE_STREAM, 0,
	        &q.base, &strata__v1__controller_reply__descriptor, &m, err);
	rpc_client_close(cli);
	const Strata__V1__ControllerReply *r = (void *)m;
	if (rc == STRATA_ETIMEDOUT || rc == STRATA_EUNAVAIL ||
	    rc == STRATA_ECLOSED) {
		fprintf(stderr, "ctl_raw: %s\n", err);
		return 1;
	}
	/* A refusal's message is in err (rpc_call_pb keeps no body then). */
	printf("code=%s done=%d message=%s\n", strata_error_name(rc),
	       r != NULL && r->done, rc == 0 ? "" : err);
	if (m != NULL) {
		rpc_pb_free(m);
	}
	return 0;
}
