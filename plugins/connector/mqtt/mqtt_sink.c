/* The mqtt connector's sink: every record published, acknowledgements
 * awaited at prepare: at least once (the comment atop mqtt.c). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "mqtt.h"

#define RECONNECT_MS 500 /* between attempts to reconnect an idle sink */

/* ------------------------------------------------------------- sink */

/* sink_open: see connector.h; restore is accepted and ignored (what was
 * published cannot be taken back: at least once). */
int mqtt_snk_open(const struct strata_host *host, const char *config,
                  const char *restore, void **state, char *errmsg)
{
	struct mq *q = NULL;
	int rc = mqtt_mq_open(host, config, false, &q, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (q->o.qos == 2 && q->o.max_inflight > QOS2_INFLIGHT) {
		host->log(host, STRATA_LOG_WARN,
		          "mqtt: max_inflight=%d with qos=2: the broker must "
		          "take that many QoS 2 messages in flight "
		          "(mosquitto: max_inflight_messages, default %d), "
		          "else it drops the excess while acknowledging it",
		          q->o.max_inflight, QOS2_INFLIGHT);
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

/* Reconnect an idle sink, trying again while the broker is down or
 * restarting, up to ack_timeout_ms (a refused login is final). */
static int snk_reconnect(struct mq *q, char *errmsg)
{
	uint64_t deadline = conn_now_ms() + q->o.ack_timeout_ms;
	unsigned attempts = 1;
	int rc;
	while ((rc = mqtt_session_connect(q, errmsg)) != 0 &&
	       rc != STRATA_EPERM && conn_now_ms() + RECONNECT_MS < deadline) {
		(void)poll(NULL, 0, RECONNECT_MS);
		attempts++;
	}
	if (rc != 0) {
		size_t n = strlen(errmsg);
		snprintf(errmsg + n, STRATA_ERRMSG_SIZE - n,
		         " (%u attempts in %" PRIu64 " ms, option "
		         "ack_timeout_ms)",
		         attempts, q->o.ack_timeout_ms);
		return rc;
	}
	if (attempts > 1) {
		q->host->log(q->host, STRATA_LOG_INFO,
		             "mqtt: reconnected to %s after %u attempts",
		             q->o.broker, attempts);
	}
	return 0;
}

/* The sink's connection is gone: reconnect when nothing was in flight
 * (nothing can be lost: an idle export the broker timed out, or a
 * broker restart), else fail naming how many messages lack an
 * acknowledgement. */
static int snk_recover(struct mq *q, char *errmsg)
{
	uint64_t inflight = q->published - q->acked;
	if (inflight == 0) {
		q->host->log(q->host, STRATA_LOG_INFO,
		             "mqtt: connection to %s lost while idle (%s): "
		             "reconnecting",
		             q->o.broker, mqtt_lost_why(q));
		int rc = snk_reconnect(q, errmsg);
		return rc != 0 ? snk_fail(q, rc, errmsg) : 0;
	}
	conn_err(errmsg,
	         "connection to broker %s lost with %" PRIu64
	         " messages unacknowledged: %s; they are published again from "
	         "the last checkpoint when the export runs again",
	         q->o.broker, inflight, mqtt_lost_why(q));
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
		mqtt_pump(q, left > STEP_MS ? STEP_MS : (int)left);
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
		while (mqtt_pump(q, 0) && !q->lost) {
		}
	}
	return q->lost ? snk_recover(q, errmsg) : 0;
}

/* sink_write: publish each record, blocking while max_inflight are
 * unacknowledged. */
int mqtt_snk_write(void *state, const struct strata_connector_record *recs,
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
			mqtt_set_lost(q, mr, errno);
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
int mqtt_snk_prepare(void *state, char *token, size_t size, char *errmsg)
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
void mqtt_snk_close(void *state)
{
	mqtt_mq_free(state);
}
