/* The mqtt connector's parts (plugins/connector/mqtt/: mqtt.c options,
 * the connection and the table; mqtt_source.c; mqtt_sink.c). What the
 * connector does and guarantees: the comment atop mqtt.c. */
#ifndef PLUGINS_CONNECTOR_MQTT_H
#define PLUGINS_CONNECTOR_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mosquitto.h>

#include "lines.h"

#define DEFAULT_PORT 1883
#define HOST_CAP 256   /* longest broker host + 1 */
#define TOPIC_CAP 4096 /* longest topic (filter) + 1 */
#define ID_CAP 256     /* longest client_id / username / password + 1 */
#define STEP_MS 100    /* longest single wait on the socket */
#define MQTT_PAYLOAD_MAX 268435455u /* MQTT's largest payload */
/* The sink's max_inflight default at qos=2: mosquitto's default
 * max_inflight_messages. Over the broker's limit mosquitto 2.0 drops an
 * incoming QoS 2 message yet answers PUBREC, which under MQTT 3.1.1
 * carries no reason code (src/handle_publish.c, "quota exceeded"), so
 * the sink would count it delivered. */
#define QOS2_INFLIGHT 20

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

/* Mark the connection lost (if it is not already) for rc and errno. */
void mqtt_set_lost(struct mq *q, int rc, int err);

/* Why the connection was lost, as text. */
const char *mqtt_lost_why(const struct mq *q);

/* One turn of the network loop, waiting at most wait_ms for the socket
 * (mqtt.c says what it does); whether the socket was readable. */
bool mqtt_pump(struct mq *q, int wait_ms);

/* Connect (or reconnect) and wait for CONNACK: 0 or a STRATA_E* code
 * with errmsg naming the broker. */
int mqtt_session_connect(struct mq *q, char *errmsg);

/* Disconnect (politely when connected) and free everything. */
void mqtt_mq_free(struct mq *q);

/* Parse, create the client and connect: the part of open both sides
 * share (mqtt.c). */
int mqtt_mq_open(const struct strata_host *host, const char *config,
                 bool source, struct mq **out, char *errmsg);

/* The source's ops (mqtt_source.c); see connector.h. */
int mqtt_src_open(const struct strata_host *host, const char *config,
                  const char *restore, void **state, char *errmsg);
int mqtt_src_poll(void *state, int wait_ms, size_t max_len,
                  struct strata_connector_record *recs, size_t max, size_t *n,
                  bool *end, char *errmsg);
int mqtt_src_position(void *state, char *token, size_t size, char *errmsg);
void mqtt_src_close(void *state);

/* The sink's ops (mqtt_sink.c); see connector.h. */
int mqtt_snk_open(const struct strata_host *host, const char *config,
                  const char *restore, void **state, char *errmsg);
int mqtt_snk_write(void *state, const struct strata_connector_record *recs,
                   size_t n, char *errmsg);
int mqtt_snk_prepare(void *state, char *token, size_t size, char *errmsg);
void mqtt_snk_close(void *state);

#endif /* PLUGINS_CONNECTOR_MQTT_H */
