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

#include "mqtt.h"

/* ---------------------------------------------------------- options */

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
	bool have_clean = false, have_inflight = false;
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
			have_inflight = true;
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
	if (!source && o->qos == 2 && !have_inflight) {
		o->max_inflight = QOS2_INFLIGHT;
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
void mqtt_set_lost(struct mq *q, int rc, int err)
{
	if (!q->lost) {
		q->lost = true;
		q->lost_rc = rc;
		q->lost_errno = err;
	}
}

/* Why the connection was lost, as text. */
const char *mqtt_lost_why(const struct mq *q)
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
bool mqtt_pump(struct mq *q, int wait_ms)
{
	int fd = mosquitto_socket(q->m);
	if (fd < 0) {
		mqtt_set_lost(q, MOSQ_ERR_NO_CONN, 0);
		return false;
	}
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (mosquitto_want_write(q->m)) {
		p.events |= POLLOUT;
	}
	int pr = poll(&p, 1, wait_ms);
	if (pr < 0) {
		if (errno != EINTR) {
			mqtt_set_lost(q, MOSQ_ERR_ERRNO, errno);
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
			mqtt_set_lost(q, MOSQ_ERR_ERRNO, err);
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
		mqtt_set_lost(q, rc, errno);
	}
	return readable;
}

/*
 * Connect (or reconnect) and wait for the broker's CONNACK, at most
 * connect_timeout_ms. 0, or STRATA_ECONNREFUSED (nothing listening,
 * the broker refused us), STRATA_EPERM (credentials), STRATA_ETIMEDOUT
 * or STRATA_EUNAVAIL with errmsg naming the broker.
 */
int mqtt_session_connect(struct mq *q, char *errmsg)
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
		mqtt_set_lost(q, rc, errno);
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
		mqtt_pump(q, left > STEP_MS ? STEP_MS : (int)left);
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
		                                    : mqtt_lost_why(q));
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
void mqtt_mq_free(struct mq *q)
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
int mqtt_mq_open(const struct strata_host *host, const char *config,
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
		mqtt_mq_free(q);
		return rc;
	}
	const struct opts *o = &q->o;
	if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS) {
		conn_err(errmsg, "libmosquitto failed to initialise");
		mqtt_mq_free(q);
		return STRATA_EINTERNAL;
	}
	q->lib_ref = true;
	q->m = mosquitto_new(o->client_id[0] != '\0' ? o->client_id : NULL,
	                     o->clean_session, q);
	if (q->m == NULL) {
		int err = errno;
		conn_err(errmsg, "create an MQTT client for %s: %s", o->broker,
		         strerror(err));
		mqtt_mq_free(q);
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
		mqtt_mq_free(q);
		return STRATA_ENOMEM;
	}
	rc = mqtt_session_connect(q, errmsg);
	if (rc != 0) {
		mqtt_mq_free(q);
		return rc;
	}
	*out = q;
	return 0;
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
        .source_open = mqtt_src_open,
        .source_poll = mqtt_src_poll,
        .source_position = mqtt_src_position,
        .source_close = mqtt_src_close,
        .sink_flags = 0, /* at least once */
        .sink_open = mqtt_snk_open,
        .sink_write = mqtt_snk_write,
        .sink_prepare = mqtt_snk_prepare,
        .sink_commit = NULL, /* published messages are visible */
        .sink_close = mqtt_snk_close,
        .check = check,
};

/* The connector's one exported symbol (STRATA_CONNECTOR_ENTRY). */
STRATA_PLUGIN_EXPORT const struct strata_connector_ops *
strata_connector_plugin(void)
{
	return &ops;
}
