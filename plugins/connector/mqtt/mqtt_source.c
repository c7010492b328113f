/* The mqtt connector's source: a subscription read only while a poll has
 * room (the comment atop mqtt.c says what it guarantees). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mqtt.h"

/* ----------------------------------------------------------- source */

/* source_open: see connector.h; a restore token is STRATA_EINVAL (the
 * runtime never passes one to a source that is not replayable). */
int mqtt_src_open(const struct strata_host *host, const char *config,
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
	int rc = mqtt_mq_open(host, config, true, &q, errmsg);
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
		mqtt_mq_free(q);
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
		         o->broker, mqtt_lost_why(q));
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
int mqtt_src_poll(void *state, int wait_ms, size_t max_len,
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
		while (!q->lost && q->queued < max && mqtt_pump(q, 0)) {
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
		mqtt_pump(q, left > STEP_MS ? STEP_MS : (int)left);
	}
}

/* source_position: "n=<records polled>" (informational). */
int mqtt_src_position(void *state, char *token, size_t size, char *errmsg)
{
	struct mq *q = state;
	return conn_token(token, size, "n=", q->polled, "position of",
	                  "the mqtt source", errmsg);
}

/* source_close: messages read but never returned were acknowledged to
 * the broker already: say how many are lost. */
void mqtt_src_close(void *state)
{
	struct mq *q = state;
	if (q->queued > 0) {
		q->host->log(q->host, STRATA_LOG_WARN,
		             "mqtt: %zu messages from %s read (and "
		             "acknowledged) but not imported: they are lost",
		             q->queued, q->o.broker);
	}
	mqtt_mq_free(q);
}
