// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * YAML to cJSON for the spec loader (see yaml_json.h for what is supported).
 *
 * Built on libyaml's event parser rather than its document loader: the loader
 * resolves aliases by sharing nodes, which a tree of cJSON items cannot
 * represent, and events give the line of every problem for the message.
 * Touches nothing but the memory it returns.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "yaml_json.h"

/* Manifests nest a dozen levels at most; the bound keeps hostile input cheap. */
#define YJ_MAX_DEPTH 64

#define CORE_TAG(t) "tag:yaml.org,2002:" t

struct yj_frame {
	cJSON *node; /* an object or an array */
	char *key; /* objects: the key waiting for its value, or NULL */
};

struct yj_state {
	struct yj_frame stack[YJ_MAX_DEPTH];
	int depth;
	cJSON *root; /* the current document's root */
	char *err;
	size_t errlen;
};

static int yj_fail(struct yj_state *st, const yaml_mark_t *mark, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int yj_fail(struct yj_state *st, const yaml_mark_t *mark, const char *fmt, ...)
{
	size_t off = 0;
	va_list ap;
	int n;

	if (!st->errlen)
		return -EINVAL;
	if (mark) {
		n = snprintf(st->err, st->errlen, "line %zu, column %zu: ", mark->line + 1,
			     mark->column + 1);
		off = n < 0 ? 0 : (size_t)n;
		if (off >= st->errlen)
			return -EINVAL;
	}
	va_start(ap, fmt);
	vsnprintf(st->err + off, st->errlen - off, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool all_digits(const char *s, const char *digits)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr(digits, *s))
			return false;
	return true;
}

static bool is_core_int(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	return all_digits(s, "0123456789");
}

/* [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
static bool is_core_float(const char *s)
{
	bool int_digits = false, frac_digits = false;

	if (*s == '-' || *s == '+')
		s++;
	while (*s >= '0' && *s <= '9') {
		s++;
		int_digits = true;
	}
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9') {
			s++;
			frac_digits = true;
		}
	}
	if (!int_digits && !frac_digits)
		return false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

static bool is_one_of(const char *s, const char *const *words)
{
	for (; *words; words++)
		if (!strcmp(s, *words))
			return true;
	return false;
}

/* A plain scalar under the YAML 1.2 core schema; NULL only when out of memory. */
static cJSON *resolve_plain(const char *s)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const trues[] = { "true", "True", "TRUE", NULL };
	static const char *const falses[] = { "false", "False", "FALSE", NULL };
	static const char *const infs[] = { ".inf", ".Inf", ".INF", NULL };
	static const char *const nans[] = { ".nan", ".NaN", ".NAN", NULL };
	const char *u = s;

	if (is_one_of(s, nulls))
		return cJSON_CreateNull();
	if (is_one_of(s, trues))
		return cJSON_CreateTrue();
	if (is_one_of(s, falses))
		return cJSON_CreateFalse();
	if (is_core_int(s) || is_core_float(s))
		return cJSON_CreateNumber(strtod(s, NULL));
	if (!strncmp(s, "0o", 2) && all_digits(s + 2, "01234567")) {
		double v = 0;

		for (u = s + 2; *u; u++)
			v = v * 8 + (*u - '0');
		return cJSON_CreateNumber(v);
	}
	if (!strncmp(s, "0x", 2) && all_digits(s + 2, "0123456789abcdefABCDEF"))
		return cJSON_CreateNumber(strtod(s, NULL)); /* glibc reads hex */
	if (*u == '-' || *u == '+')
		u++;
	if (is_one_of(u, infs))
		return cJSON_CreateNumber(*s == '-' ? -INFINITY : INFINITY);
	if (is_one_of(s, nans))
		return cJSON_CreateNumber(NAN);
	return cJSON_CreateString(s);
}

static int scalar_node(struct yj_state *st, const yaml_event_t *ev, cJSON **out)
{
	const char *val = (const char *)ev->data.scalar.value;
	const char *tag = (const char *)ev->data.scalar.tag;
	bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;

	/* A C string cannot hold it, and truncating would change the value. */
	if (strlen(val) != ev->data.scalar.length)
		return yj_fail(st, &ev->start_mark, "NUL character in a scalar");

	if (tag && (!strcmp(tag, "!") || !strcmp(tag, CORE_TAG("str")))) {
		plain = false;
	} else if (tag && strcmp(tag, CORE_TAG("int")) && strcmp(tag, CORE_TAG("float")) &&
		   strcmp(tag, CORE_TAG("bool")) && strcmp(tag, CORE_TAG("null"))) {
		return yj_fail(st, &ev->start_mark, "unsupported tag %s", tag);
	}
	*out = plain ? resolve_plain(val) : cJSON_CreateString(val);
	return *out ? 0 : -ENOMEM;
}

/* Hang @node under the innermost open collection (or make it the root). */
static int attach(struct yj_state *st, cJSON *node)
{
	struct yj_frame *top;

	if (!st->depth) {
		st->root = node;
		return 0;
	}
	top = &st->stack[st->depth - 1];
	if (cJSON_IsArray(top->node)) {
		cJSON_AddItemToArray(top->node, node);
		return 0;
	}
	if (!cJSON_AddItemToObject(top->node, top->key, node)) {
		cJSON_Delete(node);
		return -ENOMEM;
	}
	free(top->key);
	top->key = NULL;
	return 0;
}

/* In a mapping with no pending key, the next scalar is a key, not a value. */
static bool want_key(const struct yj_state *st)
{
	const struct yj_frame *top;

	if (!st->depth)
		return false;
	top = &st->stack[st->depth - 1];
	return cJSON_IsObject(top->node) && !top->key;
}

static int take_key(struct yj_state *st, const yaml_event_t *ev)
{
	struct yj_frame *top = &st->stack[st->depth - 1];
	const char *key = (const char *)ev->data.scalar.value;

	if (strlen(key) != ev->data.scalar.length)
		return yj_fail(st, &ev->start_mark, "NUL character in a key");
	if (cJSON_GetObjectItemCaseSensitive(top->node, key))
		return yj_fail(st, &ev->start_mark, "duplicate key \"%.64s\"", key);
	top->key = strdup(key);
	return top->key ? 0 : -ENOMEM;
}

static int open_collection(struct yj_state *st, const yaml_event_t *ev, bool mapping)
{
	cJSON *node;
	int err;

	if (want_key(st))
		return yj_fail(st, &ev->start_mark,
			       "complex mapping keys are not supported");
	if (st->depth == YJ_MAX_DEPTH)
		return yj_fail(st, &ev->start_mark, "nested more than %d levels",
			       YJ_MAX_DEPTH);
	node = mapping ? cJSON_CreateObject() : cJSON_CreateArray();
	if (!node)
		return -ENOMEM;
	err = attach(st, node);
	if (err)
		return err;
	st->stack[st->depth].node = node;
	st->stack[st->depth].key = NULL;
	st->depth++;
	return 0;
}

static int handle_event(struct yj_state *st, const yaml_event_t *ev)
{
	const yaml_char_t *anchor = NULL;
	cJSON *node = NULL;
	int err;

	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return yj_fail(st, &ev->start_mark,
			       "aliases (*%.32s) are not supported; write the value out",
			       (const char *)ev->data.alias.anchor);
	case YAML_SCALAR_EVENT:
		anchor = ev->data.scalar.anchor;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		break;
	default:
		break;
	}
	if (anchor)
		return yj_fail(st, &ev->start_mark,
			       "anchors (&%.32s) are not supported; write the value out",
			       (const char *)anchor);

	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		if (want_key(st))
			return take_key(st, ev);
		err = scalar_node(st, ev, &node);
		if (err)
			return err;
		return attach(st, node);
	case YAML_SEQUENCE_START_EVENT:
		return open_collection(st, ev, false);
	case YAML_MAPPING_START_EVENT:
		return open_collection(st, ev, true);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		st->depth--;
		return 0;
	default:
		return 0;
	}
}

static int parser_fail(struct yj_state *st, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "not valid YAML";

	if (p->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	/* The reader checks encoding before there are lines to count. */
	if (p->error == YAML_READER_ERROR)
		return yj_fail(st, NULL, "byte %zu: %s", p->problem_offset, problem);
	if (p->context)
		return yj_fail(st, &p->problem_mark, "%s (%s at line %zu)", problem, p->context,
			       p->context_mark.line + 1);
	return yj_fail(st, &p->problem_mark, "%s", problem);
}

static void drop_stack(struct yj_state *st)
{
	while (st->depth > 0)
		free(st->stack[--st->depth].key);
}

int yaml_to_cjson(const char *buf, size_t len, cJSON **out, char *err, size_t errlen)
{
	struct yj_state st = { .err = err, .errlen = errlen };
	cJSON *first = NULL;
	yaml_mark_t doc_mark = { 0 };
	yaml_parser_t parser;
	yaml_event_t ev;
	int docs = 0, ret = 0;
	bool done = false;

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);

	while (!done && !ret) {
		if (!yaml_parser_parse(&parser, &ev)) {
			ret = parser_fail(&st, &parser);
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			docs++;
			doc_mark = ev.start_mark;
			break;
		case YAML_DOCUMENT_END_EVENT:
			if (docs == 1) {
				first = st.root;
			} else if (st.root && !cJSON_IsNull(st.root)) {
				ret = yj_fail(&st, &doc_mark, "a second YAML document; "
					      "sluice reads one Canary per file");
				cJSON_Delete(st.root);
			} else {
				cJSON_Delete(st.root);
			}
			st.root = NULL;
			break;
		default:
			ret = handle_event(&st, &ev);
			break;
		}
		yaml_event_delete(&ev);
	}

	drop_stack(&st);
	cJSON_Delete(st.root);
	yaml_parser_delete(&parser);
	if (!ret && !first)
		ret = yj_fail(&st, NULL, "empty document");
	if (ret) {
		cJSON_Delete(first);
		return ret;
	}
	*out = first;
	return 0;
}
