/* Controller REST API on common/http, plus readiness and the controller's
 * Prometheus gauges (see rest.h).
 *
 * Happy path: a handler maps the path to a client API method, builds the
 * protobuf request from the path and the JSON body, runs it through
 * ctl_api_dispatch (same validation, leadership rules and metrics as the
 * NNG API) and renders the reply as JSON.
 *
 * Failure modes: a write on a follower comes back STRATA_ENOTLEADER and is
 * forwarded over common/rpc to the leader (which the RPC client finds by
 * following redirects); a malformed body answers 400 naming the field;
 * every error answers {"error","code","message"} with the HTTP status of
 * its code (404 unknown, 409 exists/busy/not empty, 412 not sealed, 503
 * no leader, ...).
 */
#include "controller/rest.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/errmsg.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/hex.h"
#include "common/http.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/rpc.h"
#include "raft/group.h"

#define COMP "controller.rest"
#define NAME_MAX_LEN 256  /* scope/stream names and tags (+NUL) */
#define JSON_MAX_DEPTH 32 /* nesting accepted in request bodies */
#define N_KINDS 7         /* workflow kinds 1..7 */

struct kind_arg {
	struct rest *r; /* owner */
	int kind;       /* Strata__V1__WorkflowKind */
};

struct rest {
	struct ctl_service *svc;        /* borrowed */
	struct ctl_api *api;            /* borrowed */
	struct http_server *http;       /* the server */
	struct rpc_client *fwd;         /* to the leader, for writes */
	unsigned forward_timeout_ms;    /* its timeout */
	struct kind_arg kinds[N_KINDS]; /* metric callback args */
};

/* --------------------------------------------------------------- JSON -- */

static const char *ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
		p++;
	}
	return p;
}

/* Parse the string at p (a '"'); copy it into out (size; NULL = skip).
 * Returns the position after the closing quote, NULL when malformed or
 * longer than size - 1. */
static const char *parse_str(const char *p, const char *e, char *out,
                             size_t size)
{
	size_t n = 0;
	if (p >= e || *p != '"') {
		return NULL;
	}
	for (p++; p < e && *p != '"'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20) {
			return NULL;
		}
		if (c == '\\') {
			if (++p >= e) {
				return NULL;
			}
			switch (*p) {
			case '"':
			case '\\':
			case '/':
				c = (unsigned char)*p;
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'n':
				c = '\n';
				break;
			case 'r':
				c = '\r';
				break;
			case 't':
				c = '\t';
				break;
			case 'u': {
				unsigned v = 0;
				for (int i = 0; i < 4; i++) {
					if (++p >= e ||
					    !isxdigit((unsigned char)*p)) {
						return NULL;
					}
					v = v * 16 +
					    (unsigned)(isdigit((
					                       unsigned char)*p)
					                       ? *p - '0'
					                       : (tolower((
					                                  unsigned char)*p) -
					                          'a' + 10));
				}
				if (v == 0 || v > 0x7f) {
					return NULL; /* names are ASCII */
				}
				c = (unsigned char)v;
				break;
			}
			default:
				return NULL;
			}
		}
		if (out != NULL) {
			if (n + 1 >= size) {
				return NULL;
			}
			out[n] = (char)c;
		}
		n++;
	}
	if (p >= e) {
		return NULL;
	}
	if (out != NULL) {
		out[n] = '\0';
	}
	return p + 1;
}

/* Skip one value; NULL when malformed. */
static const char *skip_value(const char *p, const char *e, int depth)
{
	p = ws(p, e);
	if (p >= e || depth > JSON_MAX_DEPTH) {
		return NULL;
	}
	if (*p == '"') {
		return parse_str(p, e, NULL, 0);
	}
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		bool obj = *p == '{';
		p = ws(p + 1, e);
		if (p < e && *p == close) {
			return p + 1;
		}
		for (;;) {
			if (obj) {
				p = parse_str(ws(p, e), e, NULL, 0);
				p = p != NULL ? ws(p, e) : NULL;
				if (p == NULL || p >= e || *p != ':') {
					return NULL;
				}
				p++;
			}
			p = skip_value(p, e, depth + 1);
			p = p != NULL ? ws(p, e) : NULL;
			if (p == NULL || p >= e) {
				return NULL;
			}
			if (*p == close) {
				return p + 1;
			}
			if (*p != ',') {
				return NULL;
			}
			p++;
		}
	}
	const char *b = p;
	while (p < e && (isalnum((unsigned char)*p) || *p == '-' || *p == '+' ||
	                 *p == '.')) {
		p++;
	}
	return p > b ? p : NULL;
}

/* Find key in the top-level object; *val = start of its value. */
static int find_key(const char *body, size_t len, const char *key,
                    const char **val, const char **end)
{
	const char *e = body + len;
	const char *p = ws(body, e);
	char k[NAME_MAX_LEN];
	*end = e;
	if (p >= e || *p != '{') {
		return STRATA_EPROTO;
	}
	p = ws(p + 1, e);
	if (p < e && *p == '}') {
		return STRATA_ENOENT;
	}
	for (;;) {
		const char *q = parse_str(ws(p, e), e, k, sizeof(k));
		if (q == NULL) {
			/* A key longer than ours cannot match: skip it. */
			q = parse_str(ws(p, e), e, NULL, 0);
			k[0] = '\0';
		}
		q = q != NULL ? ws(q, e) : NULL;
		if (q == NULL || q >= e || *q != ':') {
			return STRATA_EPROTO;
		}
		q = ws(q + 1, e);
		if (strcmp(k, key) == 0) {
			*val = q;
			return 0;
		}
		q = skip_value(q, e, 1);
		q = q != NULL ? ws(q, e) : NULL;
		if (q == NULL || q >= e) {
			return STRATA_EPROTO;
		}
		if (*q == '}') {
			return STRATA_ENOENT;
		}
		if (*q != ',') {
			return STRATA_EPROTO;
		}
		p = q + 1;
	}
}

int rest_json_keys(const char *body, size_t len, const char *const *known,
                   size_t n, char *msg)
{
	const char *e = body + len;
	const char *p = ws(body, e);
	char k[NAME_MAX_LEN];
	bool seen[16] = {false};
	if (p >= e || *p != '{' || n > sizeof(seen) / sizeof(seen[0])) {
		return STRATA_EPROTO;
	}
	p = ws(p + 1, e);
	if (p < e && *p == '}') {
		return ws(p + 1, e) == e ? 0 : STRATA_EPROTO;
	}
	for (;;) {
		const char *q = parse_str(ws(p, e), e, k, sizeof(k));
		bool too_long = false;
		if (q == NULL) {
			/* Longer than any known key: unknown. */
			q = parse_str(ws(p, e), e, NULL, 0);
			too_long = q != NULL;
			snprintf(k, sizeof(k), "%s", "(a very long name)");
		}
		size_t i = 0;
		while (q != NULL && !too_long && i < n &&
		       strcmp(k, known[i]) != 0) {
			i++;
		}
		if (q != NULL && !too_long && i < n && seen[i]) {
			snprintf(msg, STRATA_ERRMSG_SIZE,
			         "field \"%.64s\" is given twice; give it once",
			         k);
			return STRATA_EINVAL;
		}
		if (q == NULL) {
			return STRATA_EPROTO;
		}
		if (too_long || i == n) {
			int w = snprintf(msg, STRATA_ERRMSG_SIZE,
			                 "unknown field \"%.64s\"; the fields "
			                 "are",
			                 k);
			for (size_t j = 0;
			     j < n && w > 0 && (size_t)w < STRATA_ERRMSG_SIZE;
			     j++) {
				w += snprintf(
				        msg + w, STRATA_ERRMSG_SIZE - (size_t)w,
				        "%s %s", j > 0 ? "," : "", known[j]);
			}
			return STRATA_EINVAL;
		}
		seen[i] = true;
		q = ws(q, e);
		if (q >= e || *q != ':') {
			return STRATA_EPROTO;
		}
		q = skip_value(ws(q + 1, e), e, 1);
		q = q != NULL ? ws(q, e) : NULL;
		if (q == NULL || q >= e) {
			return STRATA_EPROTO;
		}
		if (*q == '}') {
			/* Nothing but white space may follow the object. */
			return ws(q + 1, e) == e ? 0 : STRATA_EPROTO;
		}
		if (*q != ',') {
			return STRATA_EPROTO;
		}
		p = q + 1;
	}
}

int rest_json_string(const char *body, size_t len, const char *key, char *out,
                     size_t size)
{
	const char *v, *e;
	int rc = find_key(body, len, key, &v, &e);
	if (rc != 0) {
		return rc;
	}
	return parse_str(v, e, out, size) != NULL ? 0 : STRATA_EPROTO;
}

int rest_json_uint(const char *body, size_t len, const char *key, uint64_t *out)
{
	const char *v, *e;
	int rc = find_key(body, len, key, &v, &e);
	if (rc != 0) {
		return rc;
	}
	char num[32];
	size_t n = 0;
	while (v < e && isdigit((unsigned char)*v) && n + 1 < sizeof(num)) {
		num[n++] = *v++;
	}
	num[n] = '\0';
	if (n == 0 || (v < e && (isalnum((unsigned char)*v) || *v == '.'))) {
		return STRATA_EPROTO;
	}
	return config_parse_uint(num, out) == 0 ? 0 : STRATA_EPROTO;
}

int rest_json_strings(const char *body, size_t len, const char *key,
                      void (*fn)(void *arg, const char *s), void *arg)
{
	const char *v, *e;
	char s[NAME_MAX_LEN + 1];
	int rc = find_key(body, len, key, &v, &e);
	if (rc != 0) {
		return rc;
	}
	if (v >= e || *v != '[') {
		return STRATA_EPROTO;
	}
	v = ws(v + 1, e);
	if (v < e && *v == ']') {
		return 0;
	}
	for (;;) {
		v = parse_str(ws(v, e), e, s, sizeof(s));
		if (v == NULL) {
			return STRATA_EPROTO;
		}
		fn(arg, s);
		v = ws(v, e);
		if (v >= e) {
			return STRATA_EPROTO;
		}
		if (*v == ']') {
			return 0;
		}
		if (*v != ',') {
			return STRATA_EPROTO;
		}
		v++;
	}
}

/* Append s as a JSON string. */
static int json_str(struct buf *b, const char *s)
{
	int rc = buf_append(b, "\"", 1);
	for (; rc == 0 && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			rc = buf_printf(b, "\\%c", c);
		} else if (c < 0x20) {
			rc = buf_printf(b, "\\u%04x", c);
		} else {
			rc = buf_append(b, s, 1);
		}
	}
	return rc != 0 ? rc : buf_append(b, "\"", 1);
}

/* ------------------------------------------------------ API plumbing -- */

/* A synchronous local dispatch. */
struct sync_call {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int code;
	char msg[STRATA_ERRMSG_SIZE];
	char redirect[RPC_MAX_URL_LEN];
	uint8_t *body; /* strata_malloc'd copy */
	size_t len;
};

static void sync_done(void *arg, int code, const char *msg,
                      const char *redirect, const uint8_t *body, size_t len)
{
	struct sync_call *s = arg;
	pthread_mutex_lock(&s->lock);
	s->code = code;
	snprintf(s->msg, sizeof(s->msg), "%s", msg);
	snprintf(s->redirect, sizeof(s->redirect), "%s", redirect);
	if (len > 0) {
		s->body = strata_malloc(len);
		if (s->body != NULL) {
			memcpy(s->body, body, len);
			s->len = len;
		} else if (s->code == 0) {
			s->code = STRATA_ENOMEM;
		}
	}
	s->done = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/*
 * Call method with req (packed) locally; forward to the leader when this
 * replica is not it. On return *reply holds the unpacked reply_desc body
 * (NULL when none or on error; free with rpc_pb_free) and msg the error.
 */
static int call_api(struct rest *r, uint32_t method,
                    const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *reply_desc,
                    ProtobufCMessage **reply, char *msg)
{
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = strata_malloc(len > 0 ? len : 1);
	*reply = NULL;
	if (buf == NULL) {
		snprintf(msg, STRATA_ERRMSG_SIZE, "out of memory");
		return STRATA_ENOMEM;
	}
	protobuf_c_message_pack(req, buf);
	struct sync_call s = {.done = false};
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	ctl_api_dispatch(r->api, method, buf, len, sync_done, &s);
	pthread_mutex_lock(&s.lock);
	while (!s.done) {
		pthread_cond_wait(&s.cond, &s.lock);
	}
	pthread_mutex_unlock(&s.lock);
	pthread_cond_destroy(&s.cond);
	pthread_mutex_destroy(&s.lock);
	int code = s.code;
	snprintf(msg, STRATA_ERRMSG_SIZE, "%s", s.msg);
	uint8_t *body = s.body;
	size_t body_len = s.len;
	if (code == STRATA_ENOTLEADER && r->fwd != NULL) {
		strata_free(body);
		body = NULL;
		body_len = 0;
		code = rpc_call(r->fwd, method, 0, buf, len, &body, &body_len,
		                msg);
	}
	strata_free(buf);
	/* An empty body is a valid (empty) message on success. */
	if (reply_desc != NULL && (body_len > 0 || code == 0)) {
		static const uint8_t none[1];
		*reply = rpc_pb_unpack(reply_desc, body_len > 0 ? body : none,
		                       body_len);
		if (*reply == NULL && code == 0) {
			snprintf(msg, STRATA_ERRMSG_SIZE, "reply is not a %s",
			         reply_desc->name);
			code = STRATA_EPROTO;
		}
	}
	strata_free(body);
	return code;
}

static int http_status(int code)
{
	switch (code) {
	case 0:
		return 200;
	case STRATA_ENOENT:
		return 404;
	case STRATA_EEXIST:
	case STRATA_EBUSY:
	case STRATA_ENOTEMPTY:
	case STRATA_ESEALED:
	case STRATA_ECONFLICT:
		return 409;
	case STRATA_ETRUNCATED: /* a cut behind the truncation point */
		return 409;
	case STRATA_EPERM: /* e.g. a reader group's internal stream */
		return 403;
	case STRATA_ENOTSEALED:
		return 412;
	case STRATA_EINVAL:
	case STRATA_EBADNAME:
	case STRATA_EPROTO:
	case STRATA_ERANGE:
	case STRATA_ECONFIG:
		return 400;
	case STRATA_ETOOBIG:
		return 413;
	case STRATA_ENOTSUP:
		return 501;
	case STRATA_EUNAVAIL:
	case STRATA_ENOTLEADER:
	case STRATA_EAGAIN:
	case STRATA_ESHUTDOWN:
	case STRATA_ETIMEDOUT:
	case STRATA_ECLOSED:
	case STRATA_ELEADERLOST:
		return 503;
	default:
		return 500;
	}
}

static int respond_error(struct http_response *res, int code, const char *msg)
{
	res->status = http_status(code);
	snprintf(res->content_type, sizeof(res->content_type),
	         "application/json");
	buf_reset(&res->body);
	int rc = buf_printf(&res->body,
	                    "{\"error\":\"%s\",\"code\":%d,"
	                    "\"message\":",
	                    strata_error_name(code), code);
	if (rc == 0) {
		rc = json_str(&res->body, msg != NULL ? msg : "");
	}
	return rc != 0 ? rc : buf_printf(&res->body, "}\n");
}

static void json_type(struct http_response *res, int status)
{
	res->status = status;
	snprintf(res->content_type, sizeof(res->content_type),
	         "application/json");
}

/* ------------------------------------------------------------ renders -- */

static const char *enum_name(const ProtobufCEnumDescriptor *d, int v,
                             size_t prefix)
{
	const ProtobufCEnumValue *ev =
	        protobuf_c_enum_descriptor_get_value(d, v);
	if (ev == NULL || strlen(ev->name) <= prefix) {
		return "UNKNOWN";
	}
	return ev->name + prefix;
}

static int render_strings(struct buf *b, const char *key, char **v, size_t n)
{
	int rc = buf_printf(b, "\"%s\":[", key);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = i ? buf_append(b, ",", 1) : 0;
		rc = rc == 0 ? json_str(b, v[i]) : rc;
	}
	return rc == 0 ? buf_append(b, "]", 1) : rc;
}

static int render_config(struct buf *b, const Strata__V1__StreamConfig *c)
{
	const char *type = "none";
	uint32_t min = 0, target = 0, factor = 0;
	if (c != NULL && c->scaling != NULL) {
		const Strata__V1__ScalingPolicy *p = c->scaling;
		switch (p->policy_case) {
		case STRATA__V1__SCALING_POLICY__POLICY_FIXED:
			type = "fixed";
			min = p->fixed->min_segments;
			break;
		case STRATA__V1__SCALING_POLICY__POLICY_BY_EVENT_RATE:
			type = "by_event_rate";
			min = p->by_event_rate->min_segments;
			target = p->by_event_rate->target;
			factor = p->by_event_rate->scale_factor;
			break;
		case STRATA__V1__SCALING_POLICY__POLICY_BY_DATA_RATE:
			type = "by_data_rate";
			min = p->by_data_rate->min_segments;
			target = p->by_data_rate->target;
			factor = p->by_data_rate->scale_factor;
			break;
		default:
			break;
		}
	}
	const char *rtype = "none";
	uint64_t rmin = 0, rmax = 0;
	if (c != NULL && c->retention != NULL) {
		const Strata__V1__RetentionPolicy *p = c->retention;
		const Strata__V1__RetentionBound *bd = NULL;
		if (p->policy_case ==
		    STRATA__V1__RETENTION_POLICY__POLICY_BY_TIME) {
			rtype = "by_time";
			bd = p->by_time;
		} else if (p->policy_case ==
		           STRATA__V1__RETENTION_POLICY__POLICY_BY_SIZE) {
			rtype = "by_size";
			bd = p->by_size;
		}
		if (bd != NULL) {
			rmin = bd->min;
			rmax = bd->max;
		}
	}
	int rc = buf_printf(b,
	                    "\"config\":{\"scaling\":{\"type\":\"%s\","
	                    "\"min_segments\":%" PRIu32 ",\"target\":%" PRIu32
	                    ",\"scale_factor\":%" PRIu32
	                    "},\"retention\":{\"type\":\"%s\",\"min\":%" PRIu64
	                    ",\"max\":%" PRIu64 "},",
	                    type, min, target, factor, rtype, rmin, rmax);
	if (rc == 0) {
		rc = render_strings(b, "tags", c != NULL ? c->tags : NULL,
		                    c != NULL ? c->n_tags : 0);
	}
	return rc == 0 ? buf_append(b, "}", 1) : rc;
}

/* ----------------------------------------------------------- handlers -- */

/* Copy path segment s[0..n) into out (NAME_MAX_LEN), percent-decoded
 * (RFC 3986). Returns false when it does not fit, or holds a malformed
 * escape or an encoded NUL or '/' (names never hold those). */
static bool decode_part(const char *s, size_t n, char *out)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= n) {
				return false;
			}
			int h = hex_value(s[i + 1]), l = hex_value(s[i + 2]);
			if (h < 0 || l < 0) {
				return false;
			}
			c = (char)(h * 16 + l);
			if (c == '\0' || c == '/') {
				return false;
			}
			i += 2;
		}
		if (k + 1 >= NAME_MAX_LEN) {
			return false;
		}
		out[k++] = c;
	}
	out[k] = '\0';
	return true;
}

/* Split the path after "/v1/scopes" into up to 4 parts, each
 * percent-decoded. Returns the part count, or -1 when the path is not
 * under /v1/scopes or a part is too long or badly encoded. */
static int split_path(const char *uri, char parts[4][NAME_MAX_LEN], char *query,
                      size_t qsize)
{
	const char *base = "/v1/scopes";
	size_t bl = strlen(base);
	query[0] = '\0';
	if (strncmp(uri, base, bl) != 0 ||
	    (uri[bl] != '\0' && uri[bl] != '/' && uri[bl] != '?')) {
		return -1;
	}
	const char *p = uri + bl;
	const char *q = strchr(p, '?');
	const char *end = q != NULL ? q : p + strlen(p);
	if (q != NULL) {
		snprintf(query, qsize, "%s", q + 1);
	}
	int n = 0;
	while (p < end) {
		if (*p == '/') {
			p++;
			continue;
		}
		const char *s = p;
		while (p < end && *p != '/') {
			p++;
		}
		if (n == 4 || !decode_part(s, (size_t)(p - s), parts[n])) {
			return -1;
		}
		n++;
	}
	return n;
}

static int get_scopes(struct rest *r, struct http_response *res)
{
	Strata__V1__ListScopesRequest q = STRATA__V1__LIST_SCOPES_REQUEST__INIT;
	ProtobufCMessage *rep;
	char msg[STRATA_ERRMSG_SIZE];
	int code = call_api(r, STRATA__V1__CONTROLLER_METHOD__CTL_LIST_SCOPES,
	                    &q.base, &strata__v1__list_scopes_reply__descriptor,
	                    &rep, msg);
	if (code != 0) {
		rpc_pb_free(rep);
		return respond_error(res, code, msg);
	}
	Strata__V1__ListScopesReply *l = (void *)rep;
	json_type(res, 200);
	int rc = buf_append(&res->body, "{", 1);
	rc = rc == 0 ? render_strings(&res->body, "scopes", l->scopes,
	                              l->n_scopes)
	             : rc;
	rc = rc == 0 ? buf_printf(&res->body, "}\n") : rc;
	rpc_pb_free(rep);
	return rc;
}

/* Answer a mutating call's outcome: its code, or status with a body
 * naming what changed. */
static int respond_write(struct http_response *res, int code, const char *msg,
                         ProtobufCMessage *rep, int status, const char *what)
{
	if (code != 0) {
		Strata__V1__ControllerReply *cr = (void *)rep;
		char m[STRATA_ERRMSG_SIZE];
		snprintf(m, sizeof(m), "%s",
		         cr != NULL && cr->message[0] != '\0' ? cr->message
		                                              : msg);
		rpc_pb_free(rep);
		return respond_error(res, code, m);
	}
	Strata__V1__ControllerReply *cr = (void *)rep;
	json_type(res, status);
	int rc = buf_printf(&res->body,
	                    "{%s,\"workflow_id\":%" PRIu64 ",\"done\":%s}\n",
	                    what, cr != NULL ? cr->workflow_id : 0,
	                    cr == NULL || cr->done ? "true" : "false");
	rpc_pb_free(rep);
	return rc;
}

/* The fields of the JSON bodies (rest_json_keys). */
static const char *const scope_keys[] = {"scope"};
static const char *const stream_keys[] = {
        "stream",    "scaling",       "min_segments",  "target", "scale_factor",
        "retention", "retention_min", "retention_max", "tags"};
static const char *const state_keys[] = {"state"};
#define N_KEYS(a) (sizeof(a) / sizeof((a)[0]))

/* 400 for a body that is not one well-formed JSON object, or has a
 * field not in known[0..n) (or one given twice); 0 to go on. The whole
 * body is checked before any field is used: a body cut short used to be
 * acted on up to where it broke (a scope created, a stream sealed). */
static int unknown_fields(const struct http_request *req,
                          const char *const *known, size_t n,
                          struct http_response *res, bool *answered)
{
	char msg[STRATA_ERRMSG_SIZE];
	int rc = rest_json_keys((const char *)req->body, req->body_len, known,
	                        n, msg);
	*answered = rc != 0;
	if (rc == STRATA_EPROTO) {
		snprintf(msg, sizeof(msg),
		         "the body (%zu bytes) is not one well-formed JSON "
		         "object; send e.g. {\"%s\": ...} with Content-Type: "
		         "application/json",
		         req->body_len, known[0]);
		rc = STRATA_EINVAL;
	}
	return *answered ? respond_error(res, rc, msg) : 0;
}

static int post_scope(struct rest *r, const struct http_request *req,
                      struct http_response *res)
{
	char name[NAME_MAX_LEN], msg[STRATA_ERRMSG_SIZE],
	        what[2 * NAME_MAX_LEN];
	bool answered;
	int rc = unknown_fields(req, scope_keys, N_KEYS(scope_keys), res,
	                        &answered);
	if (answered) {
		return rc;
	}
	rc = rest_json_string((const char *)req->body, req->body_len, "scope",
	                      name, sizeof(name));
	if (rc != 0) {
		return respond_error(res, STRATA_EINVAL,
		                     "POST /v1/scopes needs a JSON body "
		                     "{\"scope\": \"name\"}");
	}
	Strata__V1__CreateScopeRequest q =
	        STRATA__V1__CREATE_SCOPE_REQUEST__INIT;
	ProtobufCMessage *rep;
	q.scope = name;
	int code = call_api(r, STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_SCOPE,
	                    &q.base, &strata__v1__controller_reply__descriptor,
	                    &rep, msg);
	snprintf(what, sizeof(what), "\"scope\":\"%s\"", name);
	return respond_write(res, code, msg, rep, 201, what);
}

static int delete_scope(struct rest *r, const char *scope,
                        struct http_response *res)
{
	char msg[STRATA_ERRMSG_SIZE], what[2 * NAME_MAX_LEN];
	Strata__V1__DeleteScopeRequest q =
	        STRATA__V1__DELETE_SCOPE_REQUEST__INIT;
	ProtobufCMessage *rep;
	q.scope = (char *)scope;
	int code = call_api(r, STRATA__V1__CONTROLLER_METHOD__CTL_DELETE_SCOPE,
	                    &q.base, &strata__v1__controller_reply__descriptor,
	                    &rep, msg);
	snprintf(what, sizeof(what), "\"deleted\":\"%s\"", scope);
	return respond_write(res, code, msg, rep, 200, what);
}

static int list_streams(struct rest *r, const char *scope, const char *query,
                        bool with_scope, struct http_response *res)
{
	char msg[STRATA_ERRMSG_SIZE], tag[NAME_MAX_LEN] = "";
	if (strncmp(query, "tag=", 4) == 0) {
		snprintf(tag, sizeof(tag), "%.*s", (int)strcspn(query + 4, "&"),
		         query + 4);
	}
	Strata__V1__ListStreamsRequest q =
	        STRATA__V1__LIST_STREAMS_REQUEST__INIT;
	ProtobufCMessage *rep;
	q.scope = (char *)scope;
	q.tag = tag;
	int code = call_api(
	        r, STRATA__V1__CONTROLLER_METHOD__CTL_LIST_STREAMS, &q.base,
	        &strata__v1__list_streams_reply__descriptor, &rep, msg);
	if (code != 0) {
		rpc_pb_free(rep);
		return respond_error(res, code, msg);
	}
	Strata__V1__ListStreamsReply *l = (void *)rep;
	json_type(res, 200);
	int rc = buf_append(&res->body, "{", 1);
	if (rc == 0 && with_scope) {
		rc = buf_printf(&res->body, "\"scope\":");
		rc = rc == 0 ? json_str(&res->body, scope) : rc;
		rc = rc == 0 ? buf_append(&res->body, ",", 1) : rc;
	}
	rc = rc == 0 ? render_strings(&res->body, "streams", l->streams,
	                              l->n_streams)
	             : rc;
	rc = rc == 0 ? buf_printf(&res->body, "}\n") : rc;
	rpc_pb_free(rep);
	return rc;
}

static int get_stream(struct rest *r, const char *scope, const char *stream,
                      struct http_response *res)
{
	char msg[STRATA_ERRMSG_SIZE];
	Strata__V1__GetStreamRequest q = STRATA__V1__GET_STREAM_REQUEST__INIT;
	ProtobufCMessage *rep, *segs = NULL;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	int code = call_api(r, STRATA__V1__CONTROLLER_METHOD__CTL_GET_STREAM,
	                    &q.base, &strata__v1__stream_info__descriptor, &rep,
	                    msg);
	if (code == 0) {
		Strata__V1__GetSegmentsRequest sq =
		        STRATA__V1__GET_SEGMENTS_REQUEST__INIT;
		sq.scope = (char *)scope;
		sq.stream = (char *)stream;
		code = call_api(
		        r,
		        STRATA__V1__CONTROLLER_METHOD__CTL_GET_CURRENT_SEGMENTS,
		        &sq.base, &strata__v1__segments_reply__descriptor,
		        &segs, msg);
	}
	if (code != 0) {
		rpc_pb_free(rep);
		rpc_pb_free(segs);
		return respond_error(res, code, msg);
	}
	Strata__V1__StreamInfo *si = (void *)rep;
	Strata__V1__SegmentsReply *sr = (void *)segs;
	struct buf *b = &res->body;
	json_type(res, 200);
	int rc = buf_printf(b, "{\"scope\":");
	rc = rc == 0 ? json_str(b, si->scope) : rc;
	rc = rc == 0 ? buf_printf(b, ",\"stream\":") : rc;
	rc = rc == 0 ? json_str(b, si->stream) : rc;
	rc = rc == 0 ? buf_printf(
	                       b,
	                       ",\"state\":\"%s\",\"current_epoch\":%" PRIu32
	                       ",",
	                       enum_name(&strata__v1__stream_state__descriptor,
	                                 si->state, 13),
	                       si->current_epoch)
	             : rc;
	rc = rc == 0 ? render_config(b, si->config) : rc;
	rc = rc == 0 ? buf_printf(b, ",\"segments\":[") : rc;
	for (size_t i = 0; rc == 0 && sr != NULL && i < sr->n_segments; i++) {
		const Strata__V1__SegmentInfo *s = sr->segments[i];
		uint64_t id = s->segment != NULL ? s->segment->id : 0;
		rc = buf_printf(
		        b,
		        "%s{\"id\":%" PRIu64 ",\"number\":%" PRIu32
		        ",\"epoch\":%" PRIu32
		        ",\"low\":%.17g,\"high\":%.17g,\"container\":%" PRIu32
		        ",\"name\":",
		        i ? "," : "", id, (uint32_t)(id & 0xffffffffu),
		        (uint32_t)(id >> 32),
		        s->segment != NULL ? s->segment->low : 0.0,
		        s->segment != NULL ? s->segment->high : 0.0,
		        s->container);
		rc = rc == 0 ? json_str(b, s->qualified_name) : rc;
		rc = rc == 0 ? buf_append(b, "}", 1) : rc;
	}
	rc = rc == 0 ? buf_printf(b, "]}\n") : rc;
	rpc_pb_free(rep);
	rpc_pb_free(segs);
	return rc;
}

/* A stream cut as stratactl writes its positions ("NUMBER.EPOCH=OFFSET,
 * ..."), a JSON string; none = empty_as (a JSON literal). */
static int render_cut(struct buf *b, const Strata__V1__StreamCut *c,
                      const char *empty_as)
{
	if (c == NULL || c->n_positions == 0) {
		return buf_printf(b, "%s", empty_as);
	}
	int rc = buf_append(b, "\"", 1);
	for (size_t i = 0; rc == 0 && i < c->n_positions; i++) {
		uint64_t id = c->positions[i]->segment_id;
		rc = buf_printf(b, "%s%" PRIu32 ".%" PRIu32 "=%" PRId64,
		                i ? "," : "", (uint32_t)(id & 0xffffffffu),
		                (uint32_t)(id >> 32), c->positions[i]->offset);
	}
	return rc == 0 ? buf_append(b, "\"", 1) : rc;
}

/* One reader group's configuration, and where it released its streams
 * (consumption-based retention). */
static int render_group(struct buf *b, const Strata__V1__ReaderGroupConfig *g)
{
	int rc = buf_printf(b, "{\"name\":");
	rc = rc == 0 ? json_str(b, g->name) : rc;
	rc = rc == 0 ? buf_printf(
	                       b,
	                       ",\"generation\":%" PRIu64
	                       ",\"refresh_ms\":%" PRIu64
	                       ",\"checkpoint_interval_ms\":%" PRIu64
	                       ",\"max_outstanding_checkpoints\":%" PRIu32
	                       ",\"retention\":\"%s\",\"streams\":[",
	                       g->generation, g->group_refresh_ms,
	                       g->checkpoint_interval_ms,
	                       g->max_outstanding_checkpoints,
	                       enum_name(
	                               &strata__v1__reader_group_retention__descriptor,
	                               g->retention, 23))
	             : rc;
	for (size_t i = 0; rc == 0 && i < g->n_streams; i++) {
		const Strata__V1__ReaderGroupStream *x = g->streams[i];
		rc = buf_printf(b, "%s{\"scope\":", i ? "," : "");
		rc = rc == 0 ? json_str(b, x->scope) : rc;
		rc = rc == 0 ? buf_printf(b, ",\"stream\":") : rc;
		rc = rc == 0 ? json_str(b, x->stream) : rc;
		rc = rc == 0 ? buf_printf(b, ",\"from\":") : rc;
		rc = rc == 0 ? render_cut(b, x->start, "\"head\"") : rc;
		rc = rc == 0 ? buf_printf(b, ",\"to\":") : rc;
		rc = rc == 0 ? render_cut(b, x->end, "null") : rc;
		for (size_t k = 0; rc == 0 && k < g->n_released; k++) {
			const Strata__V1__ReleasedCut *r = g->released[k];
			if (strcmp(r->scope, x->scope) != 0 ||
			    strcmp(r->stream, x->stream) != 0) {
				continue;
			}
			rc = buf_printf(b, ",\"released\":");
			rc = rc == 0 ? render_cut(b, r->cut, "\"head\"") : rc;
			rc = rc == 0 ? buf_printf(b,
			                          ",\"released_ms\":%" PRIu64,
			                          r->updated_ms)
			             : rc;
		}
		rc = rc == 0 ? buf_append(b, "}", 1) : rc;
	}
	return rc == 0 ? buf_append(b, "]}", 2) : rc;
}

static int list_groups(struct rest *r, const char *scope,
                       struct http_response *res)
{
	char msg[STRATA_ERRMSG_SIZE];
	Strata__V1__ListReaderGroupsRequest q =
	        STRATA__V1__LIST_READER_GROUPS_REQUEST__INIT;
	ProtobufCMessage *rep;
	q.scope = (char *)scope;
	int code = call_api(
	        r, STRATA__V1__CONTROLLER_METHOD__CTL_LIST_READER_GROUPS,
	        &q.base, &strata__v1__list_reader_groups_reply__descriptor,
	        &rep, msg);
	if (code != 0) {
		rpc_pb_free(rep);
		return respond_error(res, code, msg);
	}
	Strata__V1__ListReaderGroupsReply *l = (void *)rep;
	json_type(res, 200);
	int rc = buf_printf(&res->body, "{\"reader_groups\":[");
	for (size_t i = 0; rc == 0 && i < l->n_groups; i++) {
		rc = i ? buf_append(&res->body, ",", 1) : 0;
		rc = rc == 0 ? render_group(&res->body, l->groups[i]) : rc;
	}
	rc = rc == 0 ? buf_printf(&res->body, "]}\n") : rc;
	rpc_pb_free(rep);
	return rc;
}

static int get_group(struct rest *r, const char *scope, const char *name,
                     struct http_response *res)
{
	char msg[STRATA_ERRMSG_SIZE];
	Strata__V1__GetReaderGroupRequest q =
	        STRATA__V1__GET_READER_GROUP_REQUEST__INIT;
	ProtobufCMessage *rep;
	q.scope = (char *)scope;
	q.name = (char *)name;
	int code = call_api(
	        r, STRATA__V1__CONTROLLER_METHOD__CTL_GET_READER_GROUP, &q.base,
	        &strata__v1__reader_group_config__descriptor, &rep, msg);
	if (code != 0) {
		rpc_pb_free(rep);
		return respond_error(res, code, msg);
	}
	json_type(res, 200);
	int rc = render_group(&res->body, (void *)rep);
	rc = rc == 0 ? buf_append(&res->body, "\n", 1) : rc;
	rpc_pb_free(rep);
	return rc;
}

/* Everything a stream config body may carry; strings owned by the tag
 * list. */
struct cfg_build {
	Strata__V1__StreamConfig cfg;
	Strata__V1__ScalingPolicy scaling;
	Strata__V1__FixedScaling fixed;
	Strata__V1__RateScaling rate;
	Strata__V1__RetentionPolicy retention;
	Strata__V1__RetentionBound bound;
	char *tags[128];
	size_t n_tags;
	bool overflow;
};

static void add_tag(void *arg, const char *s)
{
	struct cfg_build *c = arg;
	if (c->n_tags == sizeof(c->tags) / sizeof(c->tags[0])) {
		c->overflow = true;
		return;
	}
	char *t = strata_strdup(s);
	if (t == NULL) {
		c->overflow = true;
		return;
	}
	c->tags[c->n_tags++] = t;
}

static void cfg_close(struct cfg_build *c)
{
	for (size_t i = 0; i < c->n_tags; i++) {
		strata_free(c->tags[i]);
	}
}

/* Parse a stream config from a JSON body; 0 or STRATA_EINVAL with msg. */
static int cfg_parse(const char *body, size_t len, struct cfg_build *c,
                     char *msg)
{
	Strata__V1__StreamConfig sc = STRATA__V1__STREAM_CONFIG__INIT;
	Strata__V1__ScalingPolicy sp = STRATA__V1__SCALING_POLICY__INIT;
	Strata__V1__FixedScaling fx = STRATA__V1__FIXED_SCALING__INIT;
	Strata__V1__RateScaling rs = STRATA__V1__RATE_SCALING__INIT;
	Strata__V1__RetentionPolicy rp = STRATA__V1__RETENTION_POLICY__INIT;
	Strata__V1__RetentionBound rb = STRATA__V1__RETENTION_BOUND__INIT;
	memset(c, 0, sizeof(*c));
	c->cfg = sc;
	c->scaling = sp;
	c->fixed = fx;
	c->rate = rs;
	c->retention = rp;
	c->bound = rb;
	char type[32] = "fixed", rtype[32] = "none";
	uint64_t min = 1, target = 0, factor = 1, rmin = 0, rmax = 0;
	struct {
		const char *key;
		uint64_t *v;
	} nums[] = {{"min_segments", &min},
	            {"target", &target},
	            {"scale_factor", &factor},
	            {"retention_min", &rmin},
	            {"retention_max", &rmax}};
	int rc = rest_json_string(body, len, "scaling", type, sizeof(type));
	if (rc == STRATA_EPROTO) {
		snprintf(msg, STRATA_ERRMSG_SIZE,
		         "\"scaling\" must be \"fixed\", \"by_event_rate\" or "
		         "\"by_data_rate\"");
		return STRATA_EINVAL;
	}
	rc = rest_json_string(body, len, "retention", rtype, sizeof(rtype));
	if (rc == STRATA_EPROTO) {
		snprintf(msg, STRATA_ERRMSG_SIZE,
		         "\"retention\" must be \"none\", \"by_time\" or "
		         "\"by_size\"");
		return STRATA_EINVAL;
	}
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		rc = rest_json_uint(body, len, nums[i].key, nums[i].v);
		if (rc == STRATA_EPROTO || *nums[i].v > UINT32_MAX * 1000ull) {
			snprintf(msg, STRATA_ERRMSG_SIZE,
			         "\"%s\" must be a non-negative integer",
			         nums[i].key);
			return STRATA_EINVAL;
		}
	}
	rc = rest_json_strings(body, len, "tags", add_tag, c);
	if (rc == STRATA_EPROTO || c->overflow) {
		snprintf(msg, STRATA_ERRMSG_SIZE,
		         "\"tags\" must be an array of at most 128 strings of "
		         "at most 256 bytes");
		return STRATA_EINVAL;
	}
	if (min > UINT32_MAX || target > UINT32_MAX || factor > UINT32_MAX) {
		snprintf(msg, STRATA_ERRMSG_SIZE,
		         "min_segments, target and scale_factor must fit 32 "
		         "bits");
		return STRATA_EINVAL;
	}
	if (strcmp(type, "fixed") == 0) {
		c->fixed.min_segments = (uint32_t)min;
		c->scaling.policy_case =
		        STRATA__V1__SCALING_POLICY__POLICY_FIXED;
		c->scaling.fixed = &c->fixed;
	} else if (strcmp(type, "by_event_rate") == 0 ||
	           strcmp(type, "by_data_rate") == 0) {
		c->rate.min_segments = (uint32_t)min;
		c->rate.target = (uint32_t)target;
		c->rate.scale_factor = (uint32_t)factor;
		if (type[3] == 'e') {
			c->scaling.policy_case =
			        STRATA__V1__SCALING_POLICY__POLICY_BY_EVENT_RATE;
			c->scaling.by_event_rate = &c->rate;
		} else {
			c->scaling.policy_case =
			        STRATA__V1__SCALING_POLICY__POLICY_BY_DATA_RATE;
			c->scaling.by_data_rate = &c->rate;
		}
	} else {
		snprintf(msg, STRATA_ERRMSG_SIZE,
		         "unknown scaling \"%s\"; use fixed, by_event_rate or "
		         "by_data_rate",
		         type);
		return STRATA_EINVAL;
	}
	c->cfg.scaling = &c->scaling;
	c->bound.min = rmin;
	c->bound.max = rmax;
	if (strcmp(rtype, "by_time") == 0) {
		c->retention.policy_case =
		        STRATA__V1__RETENTION_POLICY__POLICY_BY_TIME;
		c->retention.by_time = &c->bound;
		c->cfg.retention = &c->retention;
	} else if (strcmp(rtype, "by_size") == 0) {
		c->retention.policy_case =
		        STRATA__V1__RETENTION_POLICY__POLICY_BY_SIZE;
		c->retention.by_size = &c->bound;
		c->cfg.retention = &c->retention;
	} else if (strcmp(rtype, "none") != 0) {
		snprintf(msg, STRATA_ERRMSG_SIZE,
		         "unknown retention \"%s\"; use none, by_time or "
		         "by_size",
		         rtype);
		return STRATA_EINVAL;
	}
	c->cfg.tags = c->tags;
	c->cfg.n_tags = c->n_tags;
	return 0;
}

static int post_stream(struct rest *r, const char *scope,
                       const struct http_request *req,
                       struct http_response *res)
{
	char name[NAME_MAX_LEN], msg[STRATA_ERRMSG_SIZE],
	        what[3 * NAME_MAX_LEN];
	const char *body = (const char *)req->body;
	bool answered;
	int rc = unknown_fields(req, stream_keys, N_KEYS(stream_keys), res,
	                        &answered);
	if (answered) {
		return rc;
	}
	if (rest_json_string(body, req->body_len, "stream", name,
	                     sizeof(name)) != 0) {
		return respond_error(res, STRATA_EINVAL,
		                     "POST /v1/scopes/{scope}/streams needs a "
		                     "JSON body {\"stream\": \"name\", "
		                     "\"min_segments\": N, ...}");
	}
	struct cfg_build c;
	if (cfg_parse(body, req->body_len, &c, msg) != 0) {
		cfg_close(&c);
		return respond_error(res, STRATA_EINVAL, msg);
	}
	Strata__V1__CreateStreamRequest q =
	        STRATA__V1__CREATE_STREAM_REQUEST__INIT;
	ProtobufCMessage *rep;
	q.scope = (char *)scope;
	q.stream = name;
	q.config = &c.cfg;
	int code = call_api(r, STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_STREAM,
	                    &q.base, &strata__v1__controller_reply__descriptor,
	                    &rep, msg);
	cfg_close(&c);
	snprintf(what, sizeof(what), "\"scope\":\"%s\",\"stream\":\"%s\"",
	         scope, name);
	return respond_write(res, code, msg, rep, 201, what);
}

static int put_stream(struct rest *r, const char *scope, const char *stream,
                      const struct http_request *req, struct http_response *res)
{
	char msg[STRATA_ERRMSG_SIZE], what[3 * NAME_MAX_LEN];
	bool answered;
	/* Every field but the name, which the path gives. */
	int rc = unknown_fields(req, stream_keys + 1, N_KEYS(stream_keys) - 1,
	                        res, &answered);
	if (answered) {
		return rc;
	}
	struct cfg_build c;
	if (cfg_parse((const char *)req->body, req->body_len, &c, msg) != 0) {
		cfg_close(&c);
		return respond_error(res, STRATA_EINVAL, msg);
	}
	Strata__V1__UpdateStreamRequest q =
	        STRATA__V1__UPDATE_STREAM_REQUEST__INIT;
	ProtobufCMessage *rep;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	q.config = &c.cfg;
	int code = call_api(r, STRATA__V1__CONTROLLER_METHOD__CTL_UPDATE_STREAM,
	                    &q.base, &strata__v1__controller_reply__descriptor,
	                    &rep, msg);
	cfg_close(&c);
	snprintf(what, sizeof(what), "\"scope\":\"%s\",\"stream\":\"%s\"",
	         scope, stream);
	return respond_write(res, code, msg, rep, 200, what);
}

static int put_state(struct rest *r, const char *scope, const char *stream,
                     const struct http_request *req, struct http_response *res)
{
	char st[32], msg[STRATA_ERRMSG_SIZE], what[3 * NAME_MAX_LEN];
	bool answered;
	int rc = unknown_fields(req, state_keys, N_KEYS(state_keys), res,
	                        &answered);
	if (answered) {
		return rc;
	}
	if (rest_json_string((const char *)req->body, req->body_len, "state",
	                     st, sizeof(st)) != 0 ||
	    strcmp(st, "SEALED") != 0) {
		return respond_error(res, STRATA_EINVAL,
		                     "PUT .../state needs the JSON body "
		                     "{\"state\": \"SEALED\"} (sealing is the "
		                     "only state change)");
	}
	Strata__V1__SealStreamRequest q = STRATA__V1__SEAL_STREAM_REQUEST__INIT;
	ProtobufCMessage *rep;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	int code = call_api(r, STRATA__V1__CONTROLLER_METHOD__CTL_SEAL_STREAM,
	                    &q.base, &strata__v1__controller_reply__descriptor,
	                    &rep, msg);
	snprintf(what, sizeof(what), "\"scope\":\"%s\",\"stream\":\"%s\"",
	         scope, stream);
	return respond_write(res, code, msg, rep, 200, what);
}

static int delete_stream(struct rest *r, const char *scope, const char *stream,
                         struct http_response *res)
{
	char msg[STRATA_ERRMSG_SIZE], what[3 * NAME_MAX_LEN];
	Strata__V1__DeleteStreamRequest q =
	        STRATA__V1__DELETE_STREAM_REQUEST__INIT;
	ProtobufCMessage *rep;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	int code = call_api(r, STRATA__V1__CONTROLLER_METHOD__CTL_DELETE_STREAM,
	                    &q.base, &strata__v1__controller_reply__descriptor,
	                    &rep, msg);
	snprintf(what, sizeof(what), "\"deleted\":\"%s/%s\"", scope, stream);
	return respond_write(res, code, msg, rep, 200, what);
}

static int rest_handle(void *arg, const struct http_request *req,
                       struct http_response *res)
{
	struct rest *r = arg;
	char parts[4][NAME_MAX_LEN], query[NAME_MAX_LEN];
	int n = split_path(req->uri, parts, query, sizeof(query));
	const char *m = req->method;
	bool get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0,
	     put = strcmp(m, "PUT") == 0, del = strcmp(m, "DELETE") == 0;
	if (n == 4 && put && strcmp(parts[1], "streams") == 0 &&
	    strcmp(parts[3], "state") == 0) {
		return put_state(r, parts[0], parts[2], req, res);
	}
	if (n >= 2 && strcmp(parts[1], "readergroups") == 0) {
		if (!get) {
			res->status = 405;
			return buf_printf(&res->body,
			                  "reader groups are read-only here "
			                  "(GET); manage them with stratactl "
			                  "group or libstrata\n");
		}
		return n == 2 ? list_groups(r, parts[0], res)
		              : get_group(r, parts[0], parts[2], res);
	}
	if (n < 0 || n == 4 || (n >= 2 && strcmp(parts[1], "streams") != 0)) {
		res->status = 404;
		return buf_printf(
		        &res->body,
		        "no such resource %s; see docs/controller.md, "
		        "REST\n",
		        req->uri);
	}
	if (n == 0 && get) {
		return get_scopes(r, res);
	}
	if (n == 0 && post) {
		return post_scope(r, req, res);
	}
	if (n == 1 && get) {
		return list_streams(r, parts[0], query, true, res);
	}
	if (n == 1 && del) {
		return delete_scope(r, parts[0], res);
	}
	if (n == 2 && get) {
		return list_streams(r, parts[0], query, false, res);
	}
	if (n == 2 && post) {
		return post_stream(r, parts[0], req, res);
	}
	if (n == 3 && get) {
		return get_stream(r, parts[0], parts[2], res);
	}
	if (n == 3 && put) {
		return put_stream(r, parts[0], parts[2], req, res);
	}
	if (n == 3 && del) {
		return delete_stream(r, parts[0], parts[2], res);
	}
	res->status = 405;
	return buf_printf(&res->body, "method %s not allowed on %s\n", m,
	                  req->uri);
}

/* ---------------------------------------------------- health, metrics -- */

static enum http_readiness ready(void *arg, struct buf *detail)
{
	struct rest *r = arg;
	struct ctl_status st;
	ctl_service_status(r->svc, &st);
	const char *role = st.role == RAFT_GROUP_LEADER      ? "leader"
	                   : st.role == RAFT_GROUP_FOLLOWER  ? "follower"
	                   : st.role == RAFT_GROUP_CANDIDATE ? "candidate"
	                                                     : "unavailable";
	buf_printf(detail,
	           "{\"role\":\"%s\",\"leader_ready\":%s,\"term\":%" PRIu64
	           ",\"leader\":%" PRIu64 ",\"applied_index\":%" PRIu64
	           ",\"log_failed\":%s,\"restart_in_ms\":%" PRIu64 "}",
	           role,
	           st.role == RAFT_GROUP_LEADER && st.ready ? "true" : "false",
	           st.term, st.leader_id, st.applied_index,
	           st.log_failed ? "true" : "false", st.restart_in_ms);
	if ((st.role == RAFT_GROUP_LEADER && st.ready) ||
	    (st.role == RAFT_GROUP_FOLLOWER && st.leader_id != 0)) {
		return HTTP_READY;
	}
	return HTTP_NOT_READY;
}

static int m_term(void *arg, double *v)
{
	struct ctl_status st;
	ctl_service_status(((struct rest *)arg)->svc, &st);
	*v = (double)st.term;
	return 0;
}

static int m_commit(void *arg, double *v)
{
	struct ctl_status st;
	ctl_service_status(((struct rest *)arg)->svc, &st);
	*v = (double)st.commit_index;
	return 0;
}

static int m_applied(void *arg, double *v)
{
	struct ctl_status st;
	ctl_service_status(((struct rest *)arg)->svc, &st);
	*v = (double)st.applied_index;
	return 0;
}

static int m_leader(void *arg, double *v)
{
	struct ctl_status st;
	ctl_service_status(((struct rest *)arg)->svc, &st);
	*v = st.role == RAFT_GROUP_LEADER ? 1.0 : 0.0;
	return 0;
}

static int m_log_failed(void *arg, double *v)
{
	struct ctl_status st;
	ctl_service_status(((struct rest *)arg)->svc, &st);
	*v = st.log_failed ? 1.0 : 0.0;
	return 0;
}

static int m_leader_id(void *arg, double *v)
{
	struct ctl_status st;
	ctl_service_status(((struct rest *)arg)->svc, &st);
	*v = (double)st.leader_id;
	return 0;
}

static int m_workflows(void *arg, double *v)
{
	struct kind_arg *k = arg;
	const struct cfsm *f = ctl_service_lock(k->r->svc);
	const Strata__V1__ControllerState *s = cfsm_state(f);
	size_t n = 0;
	for (size_t i = 0; i < s->n_workflows; i++) {
		n += (int)s->workflows[i]->kind == k->kind;
	}
	ctl_service_unlock(k->r->svc);
	*v = (double)n;
	return 0;
}

static int m_stores_alive(void *arg, double *v)
{
	struct rest *r = arg;
	const struct cfsm *f = ctl_service_lock(r->svc);
	const Strata__V1__ControllerState *s = cfsm_state(f);
	size_t n = 0;
	for (size_t i = 0; i < s->n_nodes; i++) {
		n += s->nodes[i]->alive;
	}
	ctl_service_unlock(r->svc);
	*v = (double)n;
	return 0;
}

static int m_streams(void *arg, double *v)
{
	struct rest *r = arg;
	const struct cfsm *f = ctl_service_lock(r->svc);
	const Strata__V1__ControllerState *s = cfsm_state(f);
	size_t n = 0;
	for (size_t i = 0; i < s->n_scopes; i++) {
		n += s->scopes[i]->n_streams;
	}
	ctl_service_unlock(r->svc);
	*v = (double)n;
	return 0;
}

static int register_metrics(struct rest *r, struct metrics_registry *reg,
                            char *errmsg)
{
	static const struct {
		const char *name;
		const char *help;
		metrics_value_fn fn;
		enum metrics_type type;
	} gauges[] = {
	        {"strata_controller_raft_term", "Current Raft term.", m_term,
	         METRICS_GAUGE},
	        {"strata_controller_raft_commit_index",
	         "Highest committed Raft log index.", m_commit, METRICS_GAUGE},
	        {"strata_controller_raft_applied_index",
	         "Last Raft log index applied to the FSM.", m_applied,
	         METRICS_GAUGE},
	        {"strata_controller_raft_leader",
	         "1 when this replica is the Raft leader.", m_leader,
	         METRICS_GAUGE},
	        {"strata_controller_raft_leader_id",
	         "Node id of the known leader, 0 if none.", m_leader_id,
	         METRICS_GAUGE},
	        {"strata_controller_raft_log_failed",
	         "1 while this replica is out of its group because a write "
	         "to its Raft log failed (restarted after "
	         "raft.recover_after).",
	         m_log_failed, METRICS_GAUGE},
	        {"strata_controller_stores_alive",
	         "Segment stores whose lease is current.", m_stores_alive,
	         METRICS_GAUGE},
	        {"strata_controller_streams", "Streams in all scopes.",
	         m_streams, METRICS_GAUGE},
	};
	static const char *const kinds[N_KINDS] = {
	        "create_stream", "scale",         "seal",    "truncate",
	        "delete",        "remove_stream", "roll_txn"};
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < sizeof(gauges) / sizeof(gauges[0]);
	     i++) {
		rc = metrics_callback_register(
		        reg, gauges[i].type, gauges[i].name, gauges[i].help,
		        NULL, 0, gauges[i].fn, r, errmsg);
	}
	for (int k = 0; rc == 0 && k < N_KINDS; k++) {
		struct metrics_label l = {.name = "kind", .value = kinds[k]};
		r->kinds[k].r = r;
		r->kinds[k].kind = k + 1;
		rc = metrics_callback_register(
		        reg, METRICS_GAUGE,
		        "strata_controller_workflows_running",
		        "Workflows recorded in the FSM and not finished, by "
		        "kind.",
		        &l, 1, m_workflows, &r->kinds[k], errmsg);
	}
	return rc;
}

/* ---------------------------------------------------------- lifecycle -- */

int rest_start(const struct rest_config *cfg, struct rest **out, char *errmsg)
{
	struct rest *r = strata_calloc(1, sizeof(*r));
	int rc;
	if (r == NULL) {
		errmsg_set(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	r->svc = cfg->svc;
	r->api = cfg->api;
	r->forward_timeout_ms =
	        cfg->forward_timeout_ms ? cfg->forward_timeout_ms : 10000;
	if (cfg->metrics != NULL) {
		rc = register_metrics(r, cfg->metrics, errmsg);
		if (rc != 0) {
			goto err;
		}
	}
	unsigned n = 0;
	const struct ctl_member *mem = ctl_service_members(r->svc, &n);
	const char *urls[CTL_MAX_MEMBERS];
	for (unsigned i = 0; i < n; i++) {
		urls[i] = mem[i].client_url;
	}
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.timeout_ms = (int)r->forward_timeout_ms;
	rc = rpc_client_open(&r->fwd, urls, n, &o, errmsg);
	if (rc != 0) {
		goto err;
	}
	struct http_server_config hc = {.url = cfg->url,
	                                .config_key = cfg->config_key,
	                                .metrics = cfg->metrics,
	                                .ready = ready,
	                                .ready_arg = r};
	rc = http_server_start(&hc, &r->http, errmsg);
	if (rc != 0) {
		goto err_fwd;
	}
	rc = http_server_add_handler(r->http, NULL, "/v1/*", rest_handle, r);
	if (rc != 0) {
		errmsg_set(errmsg, "register the REST handlers: %s",
		           strata_strerror(rc));
		http_server_stop(r->http);
		goto err_fwd;
	}
	*out = r;
	return 0;
err_fwd:
	rpc_client_close(r->fwd);
err:
	strata_free(r);
	return rc;
}

int rest_port(const struct rest *r)
{
	return http_server_port(r->http);
}

void rest_stop(struct rest *r)
{
	if (r == NULL) {
		return;
	}
	http_server_stop(r->http);
	rpc_client_close(r->fwd);
	strata_free(r);
}
