/*
 * Connector "mqtt": a source subscribed to an MQTT topic filter and a sink
 * publishing to an MQTT topic, through libmosquitto (MQTT 3.1.1, plain
 * TCP). Neither can go back, so both are at least once at best
 * (docs/connect.md, "Connectors shipped", mqtt).
 *
 * No thread: the plugin drives libmosquitto's network loop itself
 * (mosquitto_loop_read/write/misc on its socket) from inside its ops, so
 * every callback runs on the thread calling the op.
 *
 * Sink, happy path: open connects (CONNACK within connect_timeout_ms);
 * write publishes each record to the topic (QoS qos, retain false),
 * blocking while max_inflight messages are unacknowledged; prepare waits
 * until the broker acknowledged every message published (PUBACK for QoS
 * 1, PUBCOMP for QoS 2; QoS 0: written to the socket) and returns
 * "n=<acknowledged so far>"; commit is nothing (published is visible).
 * Failure modes: the connection lost while messages are in flight, or
 * acknowledgements not coming within ack_timeout_ms, fail the op (the
 * runtime replays from its last checkpoint: duplicates, never a gap); a
 * connection lost while nothing was in flight (an idle export the broker
 * timed out) is reopened (logged). A restore token is ignored.
 *
 * Source, happy path: open connects with client_id and clean_session
 * (a persistent session by default: the broker keeps QoS 1/2 messages
 * while strata-connect is down) and subscribes to the topic filter; poll
 * reads from the socket only while it has room for the records it was
 * asked for, so messages wait in the broker (or the kernel), not here.
 * Each record is a message's payload, keyed by its topic (Strata keeps
 * per-key order: per-topic order). The position is "n=<records polled>",
 * for information; a restore is refused. Failure modes: libmosquitto
 * acknowledges a QoS 1/2 message when it reads it, before the callback
 * that hands it to us (v2.0.11 lib/handle_publish.c: send__puback before
 * on_message; lib/handle_pubrel.c: send__pubcomp before on_message), so a
 * message polled but not yet committed by the runtime is lost by a crash;
 * a lost connection or a refused subscription fails the next poll once
 * the messages already read are out; a message over max_len is
 * STRATA_ETOOBIG naming its topic.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <mosquitto.h>

#include "lines.h"

#define DEFAULT_PORT 1883
#define HOST_CAP 256   /* longest broker host + 1 */
#define TOPIC_CAP 4096 /* longest topic (filter) + 1 */
#define ID_CAP 256     /* longest client_id / username / password + 1 */
#define STEP_MS 100    /* longest single wait on the socket */
#define MQTT_PAYLOAD_MAX 268435455u /* MQTT's largest payload */

/* ---------------------------------------------------------- options */

/* One side's options, parsed. */
struct opts {
	char broker[HOST_CAP + 32];  /* "mqtt://host:port", for messages */
	char host[HOST_CAP];         /* broker host (no brackets) */
	int port;                    /* broker port */
	char topic[TOPIC_CAP];       /* sink: topic; source: topic filter */
	int qos;                     /* 0, 1 or 2 */
	char client_id[ID_CAP];      /* "" = a random one (clean sessions) */
	bool clean_session;          /* false: the broker keeps the session */
	char username[ID_CAP];       /* "" = none */
	char password[ID_CAP];       /* "" = none */
	bool have_password;          /* password= given */
	int keepalive_s;             /* MQTT keep alive, seconds */
	uint64_t connect_timeout_ms; /* CONNACK within this */
	uint64_t ack_timeout_ms;     /* sink: acknowledgements within this */
	int max_inflight;            /* sink: unacknowledged messages at most */
};

/* Parse "mqtt://HOST[:PORT]" (HOST may be [IPv6]) into o. */
static bool parse_broker(const char *v, size_t n, struct opts *o)
{
	char url[HOST_CAP + 32];
	if (n >= sizeof(url) || n < 8 || memcmp(v, "mqtt://", 7) != 0) {
		return false;
	}
	memcpy(url, v, n);
	url[n] = '\0';
	const char *hs = url + 7;
	const char *he;
	const char *rest;
	if (*hs == '[') {
		hs++;
		he = strchr(hs, ']');
		if (he == NULL) {
			return false;
		}
		rest = he + 1;
	} else {
		he = hs + strcspn(hs, ":/[]");
		rest = he;
	}
	size_t hl = (size_t)(he - hs);
	if (hl == 0 || hl >= sizeof(o->host)) {
		return false;
	}
	long port = DEFAULT_PORT;
	if (*rest == ':') {
		uint64_t p = 0;
		if (!conn_u64(rest + 1, &p) || p == 0 || p > 65535) {
			return false;
		}
		port = (long)p;
	} else if (*rest != '\0') {
		return false;
	}
	memcpy(o->host, hs, hl);
	o->host[hl] = '\0';
	o->port = (int)port;
	bool v6 = memchr(o->host, ':', hl) != NULL;
	snprintf(o->broker, sizeof(o->broker), "mqtt://%s%.255s%s:%d",
	         v6 ? "[" : "", o->host, v6 ? "]" : "", o->port);
	return true;
}

/* A string option value of 1..cap-1 bytes of valid UTF-8 into buf. */
static bool value_utf8(const struct strata_config_item *it, char *buf,
                       size_t cap)
{
	return conn_opt_string(it, buf, cap, true) &&
	       mosquitto_validate_utf8(buf, (int)it->value_len) ==
	               MOSQ_ERR_SUCCESS;
}

/*
 * Parse config (borrowed) for the source or the sink into *o, as open
 * does and without side effects (check uses it). 0, or STRATA_ECONFIG
 * with errmsg naming the key (unknown ones with the valid ones listed).
 */
static int parse_opts(const char *config, bool source, struct opts *o,
                      char *errmsg)
{
	const char *what = source ? "mqtt source" : "mqtt sink";
	const char *valid =
	        source ? "broker, topic, qos, client_id, clean_session, "
	                 "username, password, keepalive_s, connect_timeout_ms"
	               : "broker, topic, qos, client_id, clean_session, "
	                 "username, password, keepalive_s, "
	                 "connect_timeout_ms, max_inflight, ack_timeout_ms";
	memset(o, 0, sizeof(*o));
	parse_broker("mqtt://127.0.0.1", 16, o);
	o->qos = 1;
	o->clean_session = !source; /* the source keeps its session */
	o->keepalive_s = 60;
	o->connect_timeout_ms = 10000;
	o->ack_timeout_ms = 30000;
	o->max_inflight = 100;
	bool have_clean = false;
	const char *cur = config;
	struct strata_config_item it;
	while (strata_config_next(&cur, &it)) {
		const char *want = NULL; /* what a bad value should be */
		uint64_t v = 0;
		if (it.value == NULL) {
			return conn_opt_not_kv(errmsg, what, &it);
		} else if (strata_config_key_is(&it, "broker")) {
			if (it.value_len >= 8 &&
			    memcmp(it.value, "mqtts://", 8) == 0) {
				want = "mqtt://HOST[:PORT] (TLS, mqtts://, is "
				       "not supported)";
			} else if (!parse_broker(it.value, it.value_len, o)) {
				want = "mqtt://HOST[:PORT]";
			}
		} else if (strata_config_key_is(&it, "topic")) {
			if (!value_utf8(&it, o->topic, sizeof(o->topic))) {
				want = "a topic of 1..4095 bytes of UTF-8";
			} else if (source ? mosquitto_sub_topic_check2(
			                            o->topic, it.value_len) !=
			                            MOSQ_ERR_SUCCESS
			                  : mosquitto_pub_topic_check2(
			                            o->topic, it.value_len) !=
			                            MOSQ_ERR_SUCCESS) {
				want = source ? "a topic filter ('+' and '#' "
				                "only as whole levels, '#' "
				                "last)"
				              : "a topic name (no '+' or '#')";
			}
		} else if (strata_config_key_is(&it, "qos")) {
			if (!conn_opt_u64(&it, 0, 2, &v)) {
				want = "0, 1 or 2";
			}
			o->qos = (int)v;
		} else if (strata_config_key_is(&it, "client_id")) {
			if (!value_utf8(&it, o->client_id,
			                sizeof(o->client_id))) {
				want = "1..255 bytes of UTF-8";
			}
		} else if (strata_config_key_is(&it, "clean_session")) {
			if (!conn_bool(it.value, it.value_len,
			               &o->clean_session)) {
				want = "true or false";
			}
			have_clean = true;
		} else if (strata_config_key_is(&it, "username")) {
			if (!value_utf8(&it, o->username,
			                sizeof(o->username))) {
				want = "1..255 bytes of UTF-8";
			}
		} else if (strata_config_key_is(&it, "password")) {
			if (!conn_opt_string(&it, o->password,
			                     sizeof(o->password), false)) {
				/* Never echo a password. */
				conn_err(errmsg,
				         "option password of the %s: longer "
				         "than "
				         "255 bytes",
				         what);
				return STRATA_ECONFIG;
			}
			o->have_password = true;
		} else if (strata_config_key_is(&it, "keepalive_s")) {
			if (!conn_opt_u64(&it, 5, 65535, &v)) {
				want = "5..65535 (seconds)";
			}
			o->keepalive_s = (int)v;
		} else if (strata_config_key_is(&it, "connect_timeout_ms")) {
			if (!conn_opt_u64(&it, 100, 600000,
			                  &o->connect_timeout_ms)) {
				want = "100..600000";
			}
		} else if (!source &&
		           strata_config_key_is(&it, "max_inflight")) {
			if (!conn_opt_u64(&it, 1, 65535, &v)) {
				want = "1..65535";
			}
			o->max_inflight = (int)v;
		} else if (!source &&
		           strata_config_key_is(&it, "ack_timeout_ms")) {
			if (!conn_opt_u64(&it, 100, 3600000,
			                  &o->ack_timeout_ms)) {
				want = "100..3600000";
			}
		} else {
			return conn_opt_unknown(errmsg, what, &it, valid);
		}
		if (want != NULL) {
			return conn_opt_bad(errmsg, what, &it, want);
		}
	}
	if (o->topic[0] == '\0') {
		conn_err(errmsg, "option topic of the %s is required (%s)",
		         what,
		         source ? "a topic filter, e.g. sensors/#"
		                : "the topic to publish to, e.g. events/out");
		return STRATA_ECONFIG;
	}
	if (!o->clean_session && o->client_id[0] == '\0') {
		conn_err(errmsg,
		         "option client_id of the %s is required with "
		         "clean_session=false%s: the broker keeps the session "
		         "under it (or set clean_session=true)",
		         what, have_clean ? "" : " (the source's default)");
		return STRATA_ECONFIG;
	}
	if (o->have_password && o->username[0] == '\0') {
		conn_err(errmsg,
		         "option password of the %s needs username (MQTT 3.1.1 "
		         "sends no password alone)",
		         what);
		return STRATA_ECONFIG;
	}
	return 0;
}

/* ------------------------------------------------------- connection */

/* A message read and not yet returned (or returned by the last poll). */
struct msg {
	struct msg *next; /* FIFO */
	size_t topic_len; /* bytes of topic at bytes[0] */
	size_t len;       /* bytes of payload after it */
	uint8_t bytes[];  /* topic, then payload */
};

/* One open source or sink: a libmosquitto client and what its callbacks
 * saw. */
struct mq {
	const struct strata_host *host; /* borrowed until close */
	bool source;                    /* source or sink */
	struct opts o;                  /* parsed options */
	struct mosquitto *m;            /* the client; NULL before open */
	bool lib_ref;   /* took a mosquitto_lib_init reference */
	int connack;    /* CONNACK code; -1 while waiting */
	bool session;   /* CONNACK said the broker had our session */
	bool lost;      /* the connection is gone (on_disconnect) */
	int lost_rc;    /* why: a MOSQ_ERR_* code */
	int lost_errno; /* and errno for MOSQ_ERR_ERRNO */
	int failed;     /* sticky STRATA_E* once an op failed */
	char failmsg[STRATA_ERRMSG_SIZE]; /* and its message */
	uint64_t published; /* sink: messages handed to libmosquitto */
	uint64_t acked;     /* sink: of them, acknowledged (on_publish) */
	int sub_mid;        /* source: message id of our SUBSCRIBE */
	int suback;         /* source: granted QoS; -1 before SUBACK */
	bool sub_logged;    /* source: the SUBACK was logged */
	struct msg *head;   /* source: read, not yet returned */
	struct msg *tail;   /* last of them */
	size_t queued;      /* how many */
	struct msg *lent;   /* returned by the last poll; freed by the next */
	uint64_t polled;    /* records returned */
};

/* libmosquitto's lines go to the host log: errors and warnings as
 * warnings, notices as debug; its per-packet debug lines are dropped
 * (one per message). */
static void on_log(struct mosquitto *m, void *obj, int level, const char *str)
{
	(void)m;
	struct mq *q = obj;
	if ((level & MOSQ_LOG_DEBUG) != 0) {
		return;
	}
	int lv = (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)) != 0
	                 ? STRATA_LOG_WARN
	                 : STRATA_LOG_DEBUG;
	q->host->log(q->host, lv, "libmosquitto: %.300s", str);
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags)
{
	(void)m;
	struct mq *q = obj;
	q->connack = rc;
	q->session = (flags & 1) != 0;
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
	(void)m;
	struct mq *q = obj;
	if (!q->lost) {
		q->lost = true;
		q->lost_rc = rc == 0 ? MOSQ_ERR_CONN_LOST : rc;
		q->lost_errno = errno;
	}
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
	(void)m;
	(void)mid;
	struct mq *q = obj;
	q->acked++;
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n,
                         const int *granted)
{
	(void)m;
	struct mq *q = obj;
	if (mid == q->sub_mid && n >= 1) {
		q->suback = granted[0];
	}
}

/* Copy a message into the queue. libmosquitto has acknowledged it
 * already: running out of memory here loses it, and fails the next poll
 * saying so. */
static void on_message(struct mosquitto *m, void *obj,
                       const struct mosquitto_message *msg)
{
	(void)m;
	struct mq *q = obj;
	size_t tl = strlen(msg->topic);
	size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
	struct msg *e = q->host->malloc(sizeof(*e) + tl + len);
	if (e == NULL) {
		q->failed = STRATA_ENOMEM;
		q->host->log(q->host, STRATA_LOG_ERROR,
		             "mqtt: out of memory for a message of %zu bytes "
		             "on %.200s: it is lost",
		             len, msg->topic);
		return;
	}
	e->next = NULL;
	e->topic_len = tl;
	e->len = len;
	memcpy(e->bytes, msg->topic, tl);
	if (len > 0) {
		memcpy(e->bytes + tl, msg->payload, len);
	}
	if (q->tail != NULL) {
		q->tail->next = e;
	} else {
		q->head = e;
	}
	q->tail = e;
	q->queued++;
}

/* Mark the connection lost (if it is not already) for rc and errno. */
static void set_lost(struct mq *q, int rc, int err)
{
	if (!q->lost) {
		q->lost = true;
		q->lost_rc = rc;
		q->lost_errno = err;
	}
}

/* Why the connection was lost, as text. */
static const char *lost_why(const struct mq *q)
{
	if (q->lost_rc == MOSQ_ERR_ERRNO && q->lost_errno != 0) {
		return strerror(q->lost_errno);
	}
	if (q->lost_rc == MOSQ_ERR_CONN_LOST) {
		return "the broker closed the connection";
	}
	return mosquitto_strerror(q->lost_rc);
}

/*
 * One turn of the network loop: wait at most wait_ms for the socket, read
 * when it is readable (one packet, or as many as libmosquitto has
 * messages in flight), write what is pending, send a keep-alive when due.
 * Callers bound what a read may queue by not calling it (the source
 * calls it only while it has room). Problems mark the connection lost
 * (q->lost); nothing else fails. Returns whether the socket was readable.
 */
static bool pump(struct mq *q, int wait_ms)
{
	int fd = mosquitto_socket(q->m);
	if (fd < 0) {
		set_lost(q, MOSQ_ERR_NO_CONN, 0);
		return false;
	}
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (mosquitto_want_write(q->m)) {
		p.events |= POLLOUT;
	}
	int pr = poll(&p, 1, wait_ms);
	if (pr < 0) {
		if (errno != EINTR) {
			set_lost(q, MOSQ_ERR_ERRNO, errno);
		}
		return false;
	}
	if (pr > 0 && q->connack < 0 &&
	    (p.revents & (POLLERR | POLLHUP | POLLOUT)) != 0) {
		/* The TCP connect's outcome, for a message naming it
		 * (refused, unreachable) rather than a later EPIPE. */
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 &&
		    err != 0) {
			set_lost(q, MOSQ_ERR_ERRNO, err);
			return false;
		}
	}
	int rc = MOSQ_ERR_SUCCESS;
	bool readable =
	        pr > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP)) != 0;
	if (readable) {
		errno = 0;
		rc = mosquitto_loop_read(q->m, 1);
	}
	if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket(q->m) >= 0 &&
	    (p.revents & POLLOUT) != 0) {
		errno = 0;
		rc = mosquitto_loop_write(q->m, 1);
	}
	if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket(q->m) >= 0) {
		errno = 0;
		rc = mosquitto_loop_misc(q->m);
	}
	if (rc != MOSQ_ERR_SUCCESS) {
		set_lost(q, rc, errno);
	}
	return readable;
}

/*
 * Connect (or reconnect) and wait for the broker's CONNACK, at most
 * connect_timeout_ms. 0, or STRATA_ECONNREFUSED (nothing listening,
 * the broker refused us), STRATA_EPERM (credentials), STRATA_ETIMEDOUT
 * or STRATA_EUNAVAIL with errmsg naming the broker.
 */
static int session_connect(struct mq *q, char *errmsg)
{
	const struct opts *o = &q->o;
	q->connack = -1;
	q->lost = false;
	q->lost_rc = 0;
	q->lost_errno = 0;
	errno = 0;
	int rc =
	        mosquitto_connect_async(q->m, o->host, o->port, o->keepalive_s);
	if (rc != MOSQ_ERR_SUCCESS) {
		set_lost(q, rc, errno);
	}
	uint64_t deadline = conn_now_ms() + o->connect_timeout_ms;
	while (q->connack < 0 && !q->lost) {
		uint64_t now = conn_now_ms();
		if (now >= deadline) {
			conn_err(errmsg,
			         "connect to broker %s: no answer within "
			         "%" PRIu64
			         " ms: check that an MQTT broker is running "
			         "there and reachable (option broker)",
			         o->broker, o->connect_timeout_ms);
			return STRATA_ETIMEDOUT;
		}
		uint64_t left = deadline - now;
		pump(q, left > STEP_MS ? STEP_MS : (int)left);
	}
	if (q->connack < 0) {
		int code = STRATA_EUNAVAIL;
		if (q->lost_rc == MOSQ_ERR_ERRNO &&
		    q->lost_errno == ECONNREFUSED) {
			code = STRATA_ECONNREFUSED;
		}
		conn_err(errmsg,
		         "connect to broker %s: %s: check that an MQTT broker "
		         "is running there (option broker)",
		         o->broker,
		         q->lost_rc == MOSQ_ERR_EAI ? "unknown host"
		                                    : lost_why(q));
		return code;
	}
	if (q->connack != 0) {
		conn_err(errmsg, "broker %s refused the connection: %s%s",
		         o->broker, mosquitto_connack_string(q->connack),
		         q->connack == 4 || q->connack == 5
		                 ? " (options username, password)"
		                 : (q->connack == 2 ? " (option client_id)"
		                                    : ""));
		return q->connack == 4 || q->connack == 5 ? STRATA_EPERM
		                                          : STRATA_ECONNREFUSED;
	}
	return 0;
}

/* Free the queue and the records lent by the last poll. */
static void drop_msgs(struct mq *q)
{
	for (struct msg *e = q->lent, *n; e != NULL; e = n) {
		n = e->next;
		q->host->free(e);
	}
	q->lent = NULL;
	for (struct msg *e = q->head, *n; e != NULL; e = n) {
		n = e->next;
		q->host->free(e);
	}
	q->head = q->tail = NULL;
	q->queued = 0;
}

/* Disconnect (politely when connected) and free everything. */
static void mq_free(struct mq *q)
{
	if (q->m != NULL) {
		if (!q->lost && q->connack == 0) {
			mosquitto_disconnect(q->m); /* sends DISCONNECT */
		}
		mosquitto_destroy(q->m);
	}
	if (q->lib_ref) {
		mosquitto_lib_cleanup();
	}
	drop_msgs(q);
	explicit_bzero(q->o.password, sizeof(q->o.password));
	q->host->free(q);
}

/* Parse, create the client and connect: the part of open both sides
 * share. *out on success. */
static int mq_open(const struct strata_host *host, const char *config,
                   bool source, struct mq **out, char *errmsg)
{
	struct mq *q = host->malloc(sizeof(*q));
	if (q == NULL) {
		conn_err(errmsg, "open the mqtt %s: out of memory",
		         source ? "source" : "sink");
		return STRATA_ENOMEM;
	}
	memset(q, 0, sizeof(*q));
	q->host = host;
	q->source = source;
	q->connack = -1;
	q->suback = -1;
	int rc = parse_opts(config, source, &q->o, errmsg);
	if (rc != 0) {
		mq_free(q);
		return rc;
	}
	const struct opts *o = &q->o;
	if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS) {
		conn_err(errmsg, "libmosquitto failed to initialise");
		mq_free(q);
		return STRATA_EINTERNAL;
	}
	q->lib_ref = true;
	q->m = mosquitto_new(o->client_id[0] != '\0' ? o->client_id : NULL,
	                     o->clean_session, q);
	if (q->m == NULL) {
		int err = errno;
		conn_err(errmsg, "create an MQTT client for %s: %s", o->broker,
		         strerror(err));
		mq_free(q);
		return err == ENOMEM ? STRATA_ENOMEM : STRATA_EINVAL;
	}
	mosquitto_log_callback_set(q->m, on_log);
	mosquitto_connect_with_flags_callback_set(q->m, on_connect);
	mosquitto_disconnect_callback_set(q->m, on_disconnect);
	mosquitto_publish_callback_set(q->m, on_publish);
	mosquitto_subscribe_callback_set(q->m, on_subscribe);
	mosquitto_message_callback_set(q->m, on_message);
	/* Never queue inside libmosquitto beyond our own window. */
	mosquitto_max_inflight_messages_set(q->m, (unsigned)o->max_inflight);
	if (o->username[0] != '\0' &&
	    mosquitto_username_pw_set(q->m, o->username,
	                              o->have_password ? o->password : NULL) !=
	            MOSQ_ERR_SUCCESS) {
		conn_err(errmsg, "set the credentials for %s: out of memory",
		         o->broker);
		mq_free(q);
		return STRATA_ENOMEM;
	}
	rc = session_connect(q, errmsg);
	if (rc != 0) {
		mq_free(q);
		return rc;
	}
	*out = q;
	return 0;
}

/* ----------------------------------------------------------- source */

/* source_open: see connector.h; a restore token is STRATA_EINVAL (the
 * runtime never passes one to a source that is not replayable). */
static int src_open(const struct strata_host *host, const char *config,
                    const char *restore, void **state, char *errmsg)
{
	if (restore != NULL) {
		conn_err(errmsg,
		         "an MQTT subscription cannot be replayed: it cannot "
		         "resume at position '%.64s' (run with "
		         "guarantee=at-least-once)",
		         restore);
		return STRATA_EINVAL;
	}
	struct mq *q = NULL;
	int rc = mq_open(host, config, true, &q, errmsg);
	if (rc != 0) {
		return rc;
	}
	const struct opts *o = &q->o;
	if (!o->clean_session) {
		host->log(host, STRATA_LOG_INFO,
		          "mqtt: %s session '%.255s' on %s",
		          q->session ? "resuming the"
		                     : "no stored session: "
		                       "starting",
		          o->client_id, o->broker);
	}
	/* Subscribe again even in a resumed session (idempotent); the
	 * SUBACK is read by the polls, which report a refusal. */
	rc = mosquitto_subscribe(q->m, &q->sub_mid, o->topic, o->qos);
	if (rc != MOSQ_ERR_SUCCESS) {
		conn_err(errmsg, "subscribe to '%.200s' on %s: %s", o->topic,
		         o->broker, mosquitto_strerror(rc));
		mq_free(q);
		return STRATA_EIO;
	}
	*state = q;
	return 0;
}

/* Move up to max - *n queued messages into recs, stopping before one
 * longer than max_len: STRATA_ETOOBIG naming its topic when it is the
 * first. */
static int take(struct mq *q, size_t max_len,
                struct strata_connector_record *recs, size_t max, size_t *n,
                char *errmsg)
{
	while (*n < max && q->head != NULL) {
		struct msg *e = q->head;
		if (e->len > max_len) {
			if (*n > 0) {
				return 0; /* reported by the next poll */
			}
			conn_err(
			        errmsg,
			        "a message of %zu bytes on topic '%.*s' is "
			        "longer than %zu bytes (limits.max_event); the "
			        "broker has its acknowledgement: it is not "
			        "imported",
			        e->len,
			        e->topic_len > 200 ? 200 : (int)e->topic_len,
			        (const char *)e->bytes, max_len);
			return STRATA_ETOOBIG;
		}
		q->head = e->next;
		if (q->head == NULL) {
			q->tail = NULL;
		}
		q->queued--;
		e->next = q->lent;
		q->lent = e;
		recs[*n].key = e->bytes;
		recs[*n].keylen = e->topic_len;
		recs[*n].data = e->bytes + e->topic_len;
		recs[*n].len = e->len;
		(*n)++;
	}
	return 0;
}

/* Why no more records will come: a sticky error, a refused
 * subscription or a lost connection (0 when none). */
static int src_broken(struct mq *q, char *errmsg)
{
	const struct opts *o = &q->o;
	if (q->failed == STRATA_ENOMEM) {
		conn_err(errmsg,
		         "out of memory for a message from %s: a message "
		         "acknowledged to the broker was lost",
		         o->broker);
		return q->failed;
	}
	if (q->suback == 0x80) {
		conn_err(errmsg,
		         "broker %s refused the subscription to '%.200s' "
		         "(not allowed for this client?)",
		         o->broker, o->topic);
		return STRATA_EPERM;
	}
	if (q->lost) {
		conn_err(errmsg,
		         "connection to broker %s lost: %s; run again to go on "
		         "(with clean_session=false the broker keeps what is "
		         "published meanwhile)",
		         o->broker, lost_why(q));
		return q->lost_rc == MOSQ_ERR_ERRNO &&
		                       q->lost_errno == ECONNREFUSED
		               ? STRATA_ECONNREFUSED
		               : STRATA_EUNAVAIL;
	}
	return 0;
}

/*
 * source_poll: see connector.h. Reads from the socket only while fewer
 * than max messages are queued (one read hands over one message, or with
 * qos=2 the few the broker has in flight), so the queue never holds much
 * more than a poll takes; then returns what is queued. Waits at most
 * wait_ms when nothing is.
 */
static int src_poll(void *state, int wait_ms, size_t max_len,
                    struct strata_connector_record *recs, size_t max, size_t *n,
                    bool *end, char *errmsg)
{
	struct mq *q = state;
	*n = 0;
	*end = false; /* a subscription never ends */
	for (struct msg *e = q->lent, *nx; e != NULL; e = nx) {
		nx = e->next;
		q->host->free(e);
	}
	q->lent = NULL;
	if (max == 0) {
		return 0;
	}
	uint64_t deadline =
	        conn_now_ms() + (wait_ms > 0 ? (uint64_t)wait_ms : 0);
	for (;;) {
		/* What is ready now, without waiting. */
		while (!q->lost && q->queued < max && pump(q, 0)) {
		}
		if (q->suback >= 0 && q->suback <= 2 && !q->sub_logged) {
			q->sub_logged = true;
			q->host->log(
			        q->host, STRATA_LOG_INFO,
			        "mqtt: subscribed to '%.200s' (QoS %d) on %s",
			        q->o.topic, q->suback, q->o.broker);
		}
		int rc = take(q, max_len, recs, max, n, errmsg);
		if (rc != 0 || *n > 0) {
			q->polled += *n;
			return rc;
		}
		rc = src_broken(q, errmsg);
		if (rc != 0) {
			return rc;
		}
		uint64_t now = conn_now_ms();
		if (now >= deadline) {
			return 0;
		}
		uint64_t left = deadline - now;
		pump(q, left > STEP_MS ? STEP_MS : (int)left);
	}
}

/* source_position: "n=<records polled>" (informational). */
static int src_position(void *state, char *token, size_t size, char *errmsg)
{
	struct mq *q = state;
	return conn_token(token, size, "n=", q->polled, "position of",
	                  "the mqtt source", errmsg);
}

/* source_close: messages read but never returned were acknowledged to
 * the broker already: say how many are lost. */
static void src_close(void *state)
{
	struct mq *q = state;
	if (q->queued > 0) {
		q->host->log(q->host, STRATA_LOG_WARN,
		             "mqtt: %zu messages from %s read (and "
		             "acknowledged) but not imported: they are lost",
		             q->queued, q->o.broker);
	}
	mq_free(q);
}

/* ------------------------------------------------------------- sink */

/* sink_open: see connector.h; restore is accepted and ignored (what was
 * published cannot be taken back: at least once). */
static int snk_open(const struct strata_host *host, const char *config,
                    const char *restore, void **state, char *errmsg)
{
	struct mq *q = NULL;
	int rc = mq_open(host, config, false, &q, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (restore != NULL) {
		host->log(host, STRATA_LOG_DEBUG,
		          "mqtt: restore token %.64s ignored (at least once)",
		          restore);
	}
	*state = q;
	return 0;
}

/* Fail the sink for good with rc and errmsg (the host calls only close
 * after; the message is kept for any later op). */
static int snk_fail(struct mq *q, int rc, const char *errmsg)
{
	q->failed = rc;
	snprintf(q->failmsg, sizeof(q->failmsg), "%s", errmsg);
	return rc;
}

/* The sink's connection is gone: reconnect when nothing was in flight
 * (nothing can be lost: an idle export the broker timed out), else fail
 * naming how many messages lack an acknowledgement. */
static int snk_recover(struct mq *q, char *errmsg)
{
	uint64_t inflight = q->published - q->acked;
	if (inflight == 0) {
		q->host->log(q->host, STRATA_LOG_INFO,
		             "mqtt: connection to %s lost while idle (%s): "
		             "reconnecting",
		             q->o.broker, lost_why(q));
		int rc = session_connect(q, errmsg);
		return rc != 0 ? snk_fail(q, rc, errmsg) : 0;
	}
	conn_err(errmsg,
	         "connection to broker %s lost with %" PRIu64
	         " messages unacknowledged: %s; they are published again from "
	         "the last checkpoint when the export runs again",
	         q->o.broker, inflight, lost_why(q));
	return snk_fail(q,
	                q->lost_rc == MOSQ_ERR_ERRNO &&
	                                q->lost_errno == ECONNREFUSED
	                        ? STRATA_ECONNREFUSED
	                        : STRATA_EUNAVAIL,
	                errmsg);
}

/* Wait until at most limit messages are unacknowledged, at most
 * ack_timeout_ms; 0 or an error with the sink failed. */
static int snk_wait_acks(struct mq *q, uint64_t limit, char *errmsg)
{
	uint64_t deadline = conn_now_ms() + q->o.ack_timeout_ms;
	while (q->published - q->acked > limit) {
		if (q->lost) {
			return snk_recover(q, errmsg);
		}
		uint64_t now = conn_now_ms();
		if (now >= deadline) {
			conn_err(errmsg,
			         "%" PRIu64 " messages on '%.200s' not "
			         "acknowledged by broker %s within %" PRIu64
			         " ms (option ack_timeout_ms)",
			         q->published - q->acked, q->o.topic,
			         q->o.broker, q->o.ack_timeout_ms);
			return snk_fail(q, STRATA_ETIMEDOUT, errmsg);
		}
		uint64_t left = deadline - now;
		pump(q, left > STEP_MS ? STEP_MS : (int)left);
	}
	return 0;
}

/* The sticky error of a failed sink, for every later op. */
static int snk_broken(const struct mq *q, char *errmsg)
{
	conn_err(errmsg,
	         "an earlier operation failed (%.300s); reopen the sink",
	         q->failmsg);
	return q->failed;
}

/* Before an op: a sticky error, or the connection (reopened if it was
 * lost while idle). Also reads what acknowledgements arrived. */
static int snk_ready(struct mq *q, char *errmsg)
{
	if (q->failed != 0) {
		return snk_broken(q, errmsg);
	}
	if (!q->lost) {
		while (pump(q, 0) && !q->lost) {
		}
	}
	return q->lost ? snk_recover(q, errmsg) : 0;
}

/* sink_write: publish each record, blocking while max_inflight are
 * unacknowledged. */
static int snk_write(void *state, const struct strata_connector_record *recs,
                     size_t n, char *errmsg)
{
	struct mq *q = state;
	int rc = snk_ready(q, errmsg);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = snk_wait_acks(q, (uint64_t)q->o.max_inflight - 1, errmsg);
		if (rc != 0) {
			break;
		}
		if (recs[i].len > MQTT_PAYLOAD_MAX) {
			conn_err(errmsg,
			         "a record of %zu bytes is longer than an MQTT "
			         "message may be (%u bytes): topic '%.200s'",
			         recs[i].len, MQTT_PAYLOAD_MAX, q->o.topic);
			return snk_fail(q, STRATA_ETOOBIG, errmsg);
		}
		errno = 0;
		int mr = mosquitto_publish(q->m, NULL, q->o.topic,
		                           (int)recs[i].len, recs[i].data,
		                           q->o.qos, false);
		if (mr == MOSQ_ERR_SUCCESS) {
			q->published++;
		} else if (mr == MOSQ_ERR_NO_CONN || mr == MOSQ_ERR_CONN_LOST ||
		           mr == MOSQ_ERR_ERRNO) {
			set_lost(q, mr, errno);
			q->published++; /* in flight, fate unknown */
			rc = snk_recover(q, errmsg);
		} else {
			conn_err(errmsg, "publish to '%.200s' on %s: %s",
			         q->o.topic, q->o.broker,
			         mosquitto_strerror(mr));
			rc = snk_fail(q,
			              mr == MOSQ_ERR_NOMEM ? STRATA_ENOMEM
			                                   : STRATA_EIO,
			              errmsg);
		}
	}
	return rc;
}

/* sink_prepare: every message published so far acknowledged; the token
 * is "n=<acknowledged so far>" (informational). */
static int snk_prepare(void *state, char *token, size_t size, char *errmsg)
{
	struct mq *q = state;
	int rc = snk_ready(q, errmsg);
	if (rc == 0) {
		rc = snk_wait_acks(q, 0, errmsg);
	}
	if (rc != 0) {
		return rc;
	}
	return conn_token(token, size, "n=", q->acked, "prepare",
	                  "the mqtt sink", errmsg);
}

/* sink_close: disconnect; messages still unacknowledged are the
 * runtime's to publish again (it restarts from its last checkpoint). */
static void snk_close(void *state)
{
	mq_free(state);
}

/* ------------------------------------------------------------ table */

/* Options checked as open would, without connecting. */
static int check(const struct strata_host *host, const char *config,
                 bool source, char *errmsg)
{
	(void)host;
	struct opts o;
	int rc = parse_opts(config, source, &o, errmsg);
	explicit_bzero(o.password, sizeof(o.password));
	return rc;
}

/* The table strata-connect loads (connector.h). */
static const struct strata_connector_ops ops = {
        .abi_version = STRATA_CONNECTOR_ABI_VERSION,
        .name = "mqtt",
        .source_flags = 0, /* not replayable */
        .source_open = src_open,
        .source_poll = src_poll,
        .source_position = src_position,
        .source_close = src_close,
        .sink_flags = 0, /* at least once */
        .sink_open = snk_open,
        .sink_write = snk_write,
        .sink_prepare = snk_prepare,
        .sink_commit = NULL, /* published messages are visible */
        .sink_close = snk_close,
        .check = check,
};

/* The connector's one exported symbol (STRATA_CONNECTOR_ENTRY). */
STRATA_PLUGIN_EXPORT const struct strata_connector_ops *
strata_connector_plugin(void)
{
	return &ops;
}
