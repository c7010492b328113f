/* Controller validation: names, stream configuration, segment names, hash. */
#include "controller/fsm_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/segname.h"

#define NAME_MAX_LEN 255

int names_check(const char *name, const char *what, bool internal,
                struct cfsm_result *res)
{
	size_t len = name != NULL ? strlen(name) : 0;
	if (len == 0 || len > NAME_MAX_LEN) {
		return fsm_fail(
		        res, STRATA_EBADNAME,
		        "%s name of %zu characters is invalid; use 1..%d "
		        "characters of [A-Za-z0-9.-]",
		        what, len, NAME_MAX_LEN);
	}
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		return fsm_fail(res, STRATA_EBADNAME,
		                "%s name \"%s\" is reserved (it names a "
		                "directory); choose another name",
		                what, name);
	}
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		          (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		          (c == '_' && i == 0 && internal);
		if (ok) {
			continue;
		}
		if (c == '_' && i == 0) {
			return fsm_fail(res, STRATA_EBADNAME,
			                "%s name \"%.64s\" starts with '_', "
			                "which is reserved for internal "
			                "objects; drop the '_'",
			                what, name);
		}
		return fsm_fail(
		        res, STRATA_EBADNAME,
		        "%s name \"%.64s\" has the invalid character "
		        "0x%02x at position %zu; use only [A-Za-z0-9.-]",
		        what, name, (unsigned)(unsigned char)c, i);
	}
	return 0;
}

static int check_rate(const Strata__V1__RateScaling *r, const char *kind,
                      struct cfsm_result *res)
{
	if (r->target == 0 || r->scale_factor == 0 || r->min_segments == 0 ||
	    r->min_segments > CFSM_MAX_SEGMENTS) {
		return fsm_fail(res, STRATA_EINVAL,
		                "scaling policy %s(target %u, factor %u, min "
		                "%u) is invalid; use target >= 1, factor >= 1 "
		                "and 1..%d minimum segments",
		                kind, r->target, r->scale_factor,
		                r->min_segments, CFSM_MAX_SEGMENTS);
	}
	return 0;
}

static int check_bound(const Strata__V1__RetentionBound *b, const char *kind,
                       struct cfsm_result *res)
{
	if (b->max != 0 && b->max < b->min) {
		return fsm_fail(res, STRATA_EINVAL,
		                "retention %s(min %" PRIu64 ", max %" PRIu64
		                ") has max below min; raise max or use 0 for "
		                "no upper bound",
		                kind, b->min, b->max);
	}
	return 0;
}

int names_check_config(const Strata__V1__StreamConfig *cfg,
                       struct cfsm_result *res)
{
	const Strata__V1__ScalingPolicy *p = cfg != NULL ? cfg->scaling : NULL;
	int rc = 0;
	if (p == NULL) {
		return fsm_fail(
		        res, STRATA_EINVAL,
		        "stream configuration has no scaling policy; set "
		        "fixed, by_event_rate or by_data_rate");
	}
	switch (p->policy_case) {
	case STRATA__V1__SCALING_POLICY__POLICY_FIXED:
		if (p->fixed->min_segments == 0 ||
		    p->fixed->min_segments > CFSM_MAX_SEGMENTS) {
			return fsm_fail(
			        res, STRATA_EINVAL,
			        "scaling policy fixed(%u) is invalid; use "
			        "1..%d segments",
			        p->fixed->min_segments, CFSM_MAX_SEGMENTS);
		}
		break;
	case STRATA__V1__SCALING_POLICY__POLICY_BY_EVENT_RATE:
		rc = check_rate(p->by_event_rate, "by_event_rate", res);
		break;
	case STRATA__V1__SCALING_POLICY__POLICY_BY_DATA_RATE:
		rc = check_rate(p->by_data_rate, "by_data_rate", res);
		break;
	default:
		return fsm_fail(
		        res, STRATA_EINVAL,
		        "stream configuration has no scaling policy; set "
		        "fixed, by_event_rate or by_data_rate");
	}
	if (rc != 0) {
		return rc;
	}
	const Strata__V1__RetentionPolicy *r = cfg->retention;
	if (r != NULL) {
		switch (r->policy_case) {
		case STRATA__V1__RETENTION_POLICY__POLICY_BY_TIME:
			rc = check_bound(r->by_time, "by_time", res);
			break;
		case STRATA__V1__RETENTION_POLICY__POLICY_BY_SIZE:
			rc = check_bound(r->by_size, "by_size", res);
			break;
		default:
			break;
		}
		if (rc != 0) {
			return rc;
		}
	}
	if (cfg->n_tags > CFSM_MAX_TAGS) {
		return fsm_fail(
		        res, STRATA_EINVAL,
		        "stream configuration has %zu tags; use at most "
		        "%d",
		        cfg->n_tags, CFSM_MAX_TAGS);
	}
	for (size_t i = 0; i < cfg->n_tags; i++) {
		size_t len = strlen(cfg->tags[i]);
		if (len == 0 || len > CFSM_MAX_TAG_LEN) {
			return fsm_fail(res, STRATA_EINVAL,
			                "stream tag %zu has %zu bytes; use "
			                "1..%d bytes",
			                i, len, CFSM_MAX_TAG_LEN);
		}
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void names_normalize_tags(Strata__V1__StreamConfig *cfg)
{
	if (cfg->n_tags < 2) {
		return;
	}
	fsm_sort(cfg->tags, cfg->n_tags, sizeof(*cfg->tags), cmp_str);
	size_t out = 1;
	for (size_t i = 1; i < cfg->n_tags; i++) {
		if (strcmp(cfg->tags[i], cfg->tags[out - 1]) == 0) {
			strata_free(cfg->tags[i]);
			continue;
		}
		cfg->tags[out++] = cfg->tags[i];
	}
	cfg->n_tags = out;
}

uint32_t names_min_segments(const Strata__V1__ScalingPolicy *p)
{
	uint32_t n = 1;
	if (p == NULL) {
		return 1;
	}
	switch (p->policy_case) {
	case STRATA__V1__SCALING_POLICY__POLICY_FIXED:
		n = p->fixed->min_segments;
		break;
	case STRATA__V1__SCALING_POLICY__POLICY_BY_EVENT_RATE:
		n = p->by_event_rate->min_segments;
		break;
	case STRATA__V1__SCALING_POLICY__POLICY_BY_DATA_RATE:
		n = p->by_data_rate->min_segments;
		break;
	default:
		break;
	}
	return n == 0 ? 1 : n;
}

int names_segment_name(char *buf, size_t size, const char *scope,
                       const char *stream, uint64_t segment_id)
{
	return segname_format(buf, size, scope, stream, segment_id);
}

uint64_t names_fnv1a(const void *data, size_t n)
{
	return segname_fnv1a(data, n);
}

uint32_t names_segment_container(uint32_t container_count, const char *scope,
                                 const char *stream, uint64_t segment_id)
{
	/* One implementation shared with the segment stores. */
	return segname_container_of(container_count, scope, stream, segment_id);
}
