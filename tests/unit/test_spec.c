// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit tests for user/spec.c and user/yaml_json.c: the Canary spec as users
 * write it (design.md's example, in YAML and JSON), every validation error
 * with its exact path, the Flagger fields sluice accepts without acting on,
 * the normalized form's round trip, and hostile input (every truncation of a
 * valid document, garbage, binary), which must give errors and never crash.
 *
 * Output is TAP so that tests/run.sh can sum it with the other suites.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spec.h"
#include "yaml_json.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* design.md's example, verbatim: flow style, comments and all. */
static const char design_yaml[] =
	"apiVersion: flagger.app/v1beta1\n"
	"kind: Canary\n"
	"metadata: {name: api-service, namespace: production}\n"
	"spec:\n"
	"  service: {port: 8080, targetPort: 8080}\n"
	"  analysis:\n"
	"    interval: 1m            # any duration: 250ms, 2s, 1m, 1h\n"
	"    threshold: 5\n"
	"    maxWeight: 30\n"
	"    stepWeight: 10          # or stepWeights: [1, 5, 10, 30]\n"
	"    metrics:\n"
	"    - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}\n"
	"    - {name: request-duration, thresholdRange: {max: 500}, interval: 1m}\n"
	"  revertOnFailure: true     # false: freeze the weight on failure "
	"instead of routing back\n"
	"  steering:\n"
	"    vip: 198.19.0.10        # the Service's ClusterIP, IPv4 or IPv6\n"
	"    protocol: tcp\n"
	"    primary: {version: v1.3.2, endpoints: [198.18.1.2, 198.18.2.2]}\n"
	"    canary:  {version: v1.4.0, endpoints: [198.18.3.2]}\n"
	"    affinity: connection    # or client\n"
	"    cohorts: {canary: [198.18.0.0/28]}\n";

static const char design_json[] =
	"{\n"
	"  \"apiVersion\": \"flagger.app/v1beta1\",\n"
	"  \"kind\": \"Canary\",\n"
	"  \"metadata\": {\"name\": \"api-service\", \"namespace\": \"production\"},\n"
	"  \"spec\": {\n"
	"    \"service\": {\"port\": 8080, \"targetPort\": 8080},\n"
	"    \"analysis\": {\n"
	"      \"interval\": \"1m\", \"threshold\": 5, \"maxWeight\": 30, \"stepWeight\": 10,\n"
	"      \"metrics\": [\n"
	"        {\"name\": \"request-success-rate\", \"thresholdRange\": {\"min\": 99},\n"
	"         \"interval\": \"1m\"},\n"
	"        {\"name\": \"request-duration\", \"thresholdRange\": {\"max\": 500},\n"
	"         \"interval\": \"1m\"}\n"
	"      ]\n"
	"    },\n"
	"    \"revertOnFailure\": true,\n"
	"    \"steering\": {\n"
	"      \"vip\": \"198.19.0.10\", \"protocol\": \"tcp\",\n"
	"      \"primary\": {\"version\": \"v1.3.2\",\n"
	"                  \"endpoints\": [\"198.18.1.2\", \"198.18.2.2\"]},\n"
	"      \"canary\": {\"version\": \"v1.4.0\", \"endpoints\": [\"198.18.3.2\"]},\n"
	"      \"affinity\": \"connection\",\n"
	"      \"cohorts\": {\"canary\": [\"198.18.0.0/28\"]}\n"
	"    }\n"
	"  }\n"
	"}\n";

/* An IPv6 rollout in block style: bracketed endpoints must be quoted in YAML. */
static const char ipv6_yaml[] =
	"apiVersion: flagger.app/v1beta1\n"
	"kind: Canary\n"
	"metadata:\n"
	"  name: web\n"
	"spec:\n"
	"  service:\n"
	"    port: 80\n"
	"    targetPort: 8080\n"
	"  analysis:\n"
	"    interval: 250ms\n"
	"    stepWeights: [1, 5, 10, 30]\n"
	"    stepWeightPromotion: 50\n"
	"  skipAnalysis: false\n"
	"  steering:\n"
	"    vip: fd00:5c::10\n"
	"    protocol: UDP\n"
	"    affinity: client\n"
	"    weight: 12.5\n"
	"    primary:\n"
	"      version: \"1.10\"\n"
	"      endpoints:\n"
	"      - \"[fd00:5c::2]:9090\"\n"
	"      - fd00:5c::3\n"
	"    canary:\n"
	"      version: \"1.11\"\n"
	"      endpoints:\n"
	"      - \"[fd00:5c::4]\"\n"
	"    cohorts:\n"
	"      primary: [\"fd00:5c:1::/48\"]\n"
	"      canary:\n"
	"      - fd00:5c:2::/64\n"
	"      - fd00:5c:3::7\n";

/* ---- helpers ---- */

static void dump_errors(const struct spec_errors *errs)
{
	int i;

	for (i = 0; i < errs->n; i++)
		print_message("#   %s: %s\n", errs->e[i].path, errs->e[i].reason);
}

static void parse_ok(const char *doc, struct spec_canary *c)
{
	struct spec_errors errs;
	int err;

	err = spec_parse_buffer(doc, strlen(doc), c, &errs);
	if (err)
		dump_errors(&errs);
	assert_int_equal(err, 0);
	assert_int_equal(errs.n, 0);
}

static void parse_fail(const char *doc, struct spec_errors *errs)
{
	struct spec_canary *c = malloc(sizeof(*c));

	assert_non_null(c);
	assert_int_equal(spec_parse_buffer(doc, strlen(doc), c, errs), -EINVAL);
	assert_true(errs->n > 0);
	free(c);
}

static const struct spec_error *find_error(const struct spec_errors *errs, const char *path)
{
	int i;

	for (i = 0; i < errs->n; i++)
		if (!strcmp(errs->e[i].path, path))
			return &errs->e[i];
	return NULL;
}

/* The error at @path must read exactly @reason. */
static void expect_error(const struct spec_errors *errs, const char *path, const char *reason)
{
	const struct spec_error *e = find_error(errs, path);

	if (!e || strcmp(e->reason, reason)) {
		print_message("# wanted  %s: %s\n# got:\n", path, reason);
		dump_errors(errs);
	}
	assert_non_null(e);
	assert_string_equal(e->reason, reason);
}

/*
 * @base with each "find" replaced (first occurrence) by its "replace"; the
 * pairs end with NULL. A missing "find" fails the test, so that a test never
 * silently checks the unmodified document.
 */
static char *edit(const char *base, ...)
{
	char *doc = strdup(base);
	const char *find, *repl;
	va_list ap;

	assert_non_null(doc);
	va_start(ap, base);
	while ((find = va_arg(ap, const char *))) {
		char *at = strstr(doc, find), *next;
		size_t flen = strlen(find), rlen;

		repl = va_arg(ap, const char *);
		rlen = strlen(repl);
		if (!at)
			print_message("# edit: %s not in the document\n", find);
		assert_non_null(at);
		next = malloc(strlen(doc) - flen + rlen + 1);
		assert_non_null(next);
		memcpy(next, doc, (size_t)(at - doc));
		memcpy(next + (at - doc), repl, rlen);
		strcpy(next + (at - doc) + rlen, at + flen);
		free(doc);
		doc = next;
	}
	va_end(ap);
	return doc;
}

static void round_trip(const char *doc);

static struct spec_canary *new_canary(void)
{
	struct spec_canary *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	return c;
}

static void check_addr(const struct spec_addr *a, int family, const char *text)
{
	struct spec_addr want;

	assert_int_equal(spec_addr_parse(text, &want), 0);
	assert_int_equal(a->family, family);
	assert_int_equal(want.family, family);
	assert_memory_equal(a->addr.bytes, want.addr.bytes, 16);
}

static void check_endpoint(const struct spec_endpoint *ep, int family, const char *addr,
			   uint16_t port)
{
	check_addr(&ep->addr, family, addr);
	assert_int_equal(ep->port, port);
}

static void check_cidr(const struct spec_cidr *c, int family, const char *net, int len)
{
	check_addr(&c->net, family, net);
	assert_int_equal(c->prefixlen, len);
}

static void assert_set_equal(const struct spec_version_set *a, const struct spec_version_set *b)
{
	int i;

	assert_string_equal(a->version, b->version);
	assert_int_equal(a->n_endpoints, b->n_endpoints);
	for (i = 0; i < a->n_endpoints; i++) {
		assert_int_equal(a->endpoints[i].addr.family, b->endpoints[i].addr.family);
		assert_memory_equal(a->endpoints[i].addr.addr.bytes,
				    b->endpoints[i].addr.addr.bytes, 16);
		assert_int_equal(a->endpoints[i].port, b->endpoints[i].port);
	}
	assert_int_equal(a->n_cohorts, b->n_cohorts);
	for (i = 0; i < a->n_cohorts; i++) {
		assert_int_equal(a->cohorts[i].net.family, b->cohorts[i].net.family);
		assert_memory_equal(a->cohorts[i].net.addr.bytes, b->cohorts[i].net.addr.bytes,
				    16);
		assert_int_equal(a->cohorts[i].prefixlen, b->cohorts[i].prefixlen);
	}
}

/* Every field that means something; not the ignored list (the normalized form drops it). */
static void assert_canary_equal(const struct spec_canary *a, const struct spec_canary *b)
{
	const struct spec_analysis *x = &a->analysis, *y = &b->analysis;
	int i;

	assert_string_equal(a->name, b->name);
	assert_string_equal(a->namespace, b->namespace);
	assert_int_equal(a->port, b->port);
	assert_int_equal(a->target_port, b->target_port);
	assert_int_equal(x->interval_ms, y->interval_ms);
	assert_int_equal(x->threshold, y->threshold);
	assert_int_equal(x->max_weight, y->max_weight);
	assert_int_equal(x->step_weight, y->step_weight);
	assert_int_equal(x->n_step_weights, y->n_step_weights);
	for (i = 0; i < x->n_step_weights; i++)
		assert_int_equal(x->step_weights[i], y->step_weights[i]);
	assert_int_equal(x->step_weight_promotion, y->step_weight_promotion);
	assert_int_equal(x->iterations, y->iterations);
	assert_int_equal(x->n_metrics, y->n_metrics);
	for (i = 0; i < x->n_metrics; i++) {
		assert_int_equal(x->metrics[i].kind, y->metrics[i].kind);
		assert_int_equal(x->metrics[i].has_min, y->metrics[i].has_min);
		assert_int_equal(x->metrics[i].has_max, y->metrics[i].has_max);
		assert_true(x->metrics[i].min == y->metrics[i].min);
		assert_true(x->metrics[i].max == y->metrics[i].max);
		assert_int_equal(x->metrics[i].interval_ms, y->metrics[i].interval_ms);
	}
	assert_int_equal(a->revert_on_failure, b->revert_on_failure);
	assert_int_equal(a->skip_analysis, b->skip_analysis);
	assert_int_equal(a->vip.family, b->vip.family);
	assert_memory_equal(a->vip.addr.bytes, b->vip.addr.bytes, 16);
	assert_int_equal(a->proto, b->proto);
	assert_int_equal(a->affinity, b->affinity);
	assert_int_equal(a->initial_weight, b->initial_weight);
	assert_int_equal(a->has_initial_weight, b->has_initial_weight);
	assert_set_equal(&a->primary, &b->primary);
	assert_set_equal(&a->canary, &b->canary);
}

/* ---- the design example ---- */

static void check_design_values(const struct spec_canary *c)
{
	const struct spec_analysis *a = &c->analysis;

	assert_string_equal(c->name, "api-service");
	assert_string_equal(c->namespace, "production");
	assert_int_equal(c->port, 8080);
	assert_int_equal(c->target_port, 8080);
	assert_int_equal(a->interval_ms, 60000);
	assert_int_equal(a->threshold, 5);
	assert_int_equal(a->max_weight, 30);
	assert_int_equal(a->step_weight, 10);
	assert_int_equal(a->n_step_weights, 0);
	assert_int_equal(a->step_weight_promotion, 0);
	assert_int_equal(a->iterations, 0);
	assert_int_equal(a->n_metrics, 2);
	assert_int_equal(a->metrics[0].kind, SPEC_METRIC_SUCCESS_RATE);
	assert_true(a->metrics[0].has_min);
	assert_false(a->metrics[0].has_max);
	assert_true(a->metrics[0].min == 99.0);
	assert_int_equal(a->metrics[0].interval_ms, 60000);
	assert_int_equal(a->metrics[1].kind, SPEC_METRIC_DURATION);
	assert_false(a->metrics[1].has_min);
	assert_true(a->metrics[1].has_max);
	assert_true(a->metrics[1].max == 500.0);
	assert_int_equal(a->metrics[1].interval_ms, 60000);
	assert_true(c->revert_on_failure);
	assert_false(c->skip_analysis);
	check_addr(&c->vip, AF_INET, "198.19.0.10");
	assert_int_equal(c->proto, IPPROTO_TCP);
	assert_int_equal(c->affinity, SL_AFFINITY_CONNECTION);
	assert_int_equal(c->initial_weight, 0);
	assert_string_equal(c->primary.version, "v1.3.2");
	assert_int_equal(c->primary.n_endpoints, 2);
	check_endpoint(&c->primary.endpoints[0], AF_INET, "198.18.1.2", 8080);
	check_endpoint(&c->primary.endpoints[1], AF_INET, "198.18.2.2", 8080);
	assert_int_equal(c->primary.n_cohorts, 0);
	assert_string_equal(c->canary.version, "v1.4.0");
	assert_int_equal(c->canary.n_endpoints, 1);
	check_endpoint(&c->canary.endpoints[0], AF_INET, "198.18.3.2", 8080);
	assert_int_equal(c->canary.n_cohorts, 1);
	check_cidr(&c->canary.cohorts[0], AF_INET, "198.18.0.0", 28);
}

static void test_design_example_yaml(void **state)
{
	struct spec_canary *c = new_canary();

	(void)state;
	parse_ok(design_yaml, c);
	check_design_values(c);
	assert_int_equal(c->n_ignored, 0);
	free(c);
}

static void test_design_example_json(void **state)
{
	struct spec_canary *c = new_canary(), *y = new_canary();

	(void)state;
	parse_ok(design_json, c);
	check_design_values(c);
	parse_ok(design_yaml, y);
	assert_canary_equal(c, y);
	free(c);
	free(y);
}

/* A JSON document that cJSON refuses is read again as YAML (JSON is YAML). */
static void test_json_falls_back_to_yaml(void **state)
{
	struct spec_canary *c = new_canary();
	char *doc = edit(design_json, "\"kind\": \"Canary\",", "kind: Canary, # flow YAML\n", NULL);

	(void)state;
	parse_ok(doc, c);
	check_design_values(c);
	free(doc);
	free(c);
}

/* ---- durations ---- */

static void test_durations_valid(void **state)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} cases[] = {
		{ "250ms", 250 },	{ "2s", 2000 },		  { "1m", 60000 },
		{ "1h", 3600000 },	{ "1h30m", 5400000 },	  { "1.5s", 1500 },
		{ "0.25s", 250 },	{ "1m30s", 90000 },	  { "1s500ms", 1500 },
		{ "+2s", 2000 },	{ "0", 0 },		  { "0s", 0 },
		{ ".5s", 500 },		{ "2.m", 120000 },	  { "1.5h", 5400000 },
		{ "30m1h", 5400000 },	{ "10000000h", 36000000000000ULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t ms = 12345;

		print_message("# %s\n", cases[i].s);
		assert_int_equal(spec_duration_ms(cases[i].s, &ms), 0);
		assert_int_equal(ms, cases[i].ms);
	}
}

static void test_durations_invalid(void **state)
{
	static const char *const cases[] = {
		"5x", "", "-1s", "99999999999999999999h", "5124095576030432h",
		"18446744073709551615ms1ms", "1", "s", "ms", "1.0005s", "0.1ms", "1us",
		"1ns", "1d", "1 s", " 1s", "1s ", "1.s.", "1..5s", "1e3s", "1S", "1mss",
		"1.0000000001s", "--1s", "+", ".s",
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t ms = 7;

		print_message("# \"%s\"\n", cases[i]);
		assert_int_equal(spec_duration_ms(cases[i], &ms), -EINVAL);
	}
	assert_int_equal(spec_duration_ms(NULL, &(uint64_t){ 0 }), -EINVAL);
}

static void test_interval_forms(void **state)
{
	struct spec_canary *c = new_canary();
	struct spec_errors errs;
	char *doc;

	(void)state;
	doc = edit(design_yaml, "interval: 1m ", "interval: 250ms", NULL);
	parse_ok(doc, c);
	assert_int_equal(c->analysis.interval_ms, 250);
	/* metric windows are their own */
	assert_int_equal(c->analysis.metrics[0].interval_ms, 60000);
	free(doc);

	doc = edit(design_yaml, "interval: 1m ", "intervalMs: 1500", NULL);
	parse_ok(doc, c);
	assert_int_equal(c->analysis.interval_ms, 1500);
	free(doc);

	doc = edit(design_yaml, "interval: 1m ", "interval: 1h30m", NULL);
	parse_ok(doc, c);
	assert_int_equal(c->analysis.interval_ms, 5400000);
	free(doc);

	/* a metric without an interval takes the analysis's */
	doc = edit(design_yaml, "interval: 1m ", "interval: 2s ", "min: 99}, interval: 1m}",
		   "min: 99}}", NULL);
	parse_ok(doc, c);
	assert_int_equal(c->analysis.metrics[0].interval_ms, 2000);
	assert_int_equal(c->analysis.metrics[1].interval_ms, 60000);
	free(doc);

	doc = edit(design_yaml, "interval: 1m ", "interval: 60", NULL);
	parse_fail(doc, &errs);
	expect_error(&errs, "spec.analysis.interval",
		     "must be a duration string such as \"1m\", not a number (or give intervalMs)");
	free(doc);

	doc = edit(design_yaml, "interval: 1m ", "interval: 2s\n    intervalMs: 2500", NULL);
	parse_fail(doc, &errs);
	expect_error(&errs, "spec.analysis.intervalMs", "2500 disagrees with interval \"2s\"");
	free(doc);

	doc = edit(design_yaml, "interval: 1m ", "interval: 0s", NULL);
	parse_fail(doc, &errs);
	expect_error(&errs, "spec.analysis.interval", "must be > 0");
	free(doc);
	free(c);
}

/* ---- stepWeights ---- */

static void test_step_weights(void **state)
{
	struct spec_canary *c = new_canary();
	char *doc;

	(void)state;
	doc = edit(design_yaml, "    maxWeight: 30\n", "", "stepWeight: 10",
		   "stepWeights: [1, 5, 10, 30]", NULL);
	parse_ok(doc, c);
	assert_int_equal(c->analysis.step_weight, 0);
	assert_int_equal(c->analysis.n_step_weights, 4);
	assert_int_equal(c->analysis.step_weights[0], 1);
	assert_int_equal(c->analysis.step_weights[1], 5);
	assert_int_equal(c->analysis.step_weights[2], 10);
	assert_int_equal(c->analysis.step_weights[3], 30);
	assert_int_equal(c->analysis.max_weight, 30);
	free(doc);

	/* a maxWeight that agrees with the last step is fine */
	doc = edit(design_yaml, "stepWeight: 10", "stepWeights: [2, 30]", NULL);
	parse_ok(doc, c);
	assert_int_equal(c->analysis.max_weight, 30);
	free(doc);

	/* blue/green: iterations and no steps at all */
	doc = edit(design_yaml, "stepWeight: 10", "iterations: 10", NULL);
	parse_ok(doc, c);
	assert_int_equal(c->analysis.iterations, 10);
	assert_int_equal(c->analysis.step_weight, 0);
	assert_int_equal(c->analysis.n_step_weights, 0);
	free(doc);

	/* Flagger's defaults: maxWeight 100, threshold <= 0 means 1 */
	doc = edit(design_yaml, "    maxWeight: 30\n", "", "threshold: 5", "threshold: -3", NULL);
	parse_ok(doc, c);
	assert_int_equal(c->analysis.max_weight, 100);
	assert_int_equal(c->analysis.threshold, 1);
	free(doc);
	doc = edit(design_yaml, "    threshold: 5\n", "", NULL);
	parse_ok(doc, c);
	assert_int_equal(c->analysis.threshold, 1);
	free(doc);
	free(c);
}

/* ---- every validation error, one test each ---- */

#define A64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

struct error_case {
	const char *name;
	const char *find[3], *repl[3];
	const char *path;
	const char *reason;
};

static const struct error_case error_cases[] = {
	{ "apiVersion wrong", { "flagger.app/v1beta1" }, { "flagger.app/v1alpha3" },
	  "apiVersion", "\"flagger.app/v1alpha3\" is not flagger.app/v1beta1" },
	{ "apiVersion missing", { "apiVersion: flagger.app/v1beta1\n" }, { "" },
	  "apiVersion", "required" },
	{ "kind wrong", { "kind: Canary" }, { "kind: Deployment" },
	  "kind", "\"Deployment\" is not Canary" },
	{ "kind missing", { "kind: Canary\n" }, { "" }, "kind", "required" },
	{ "metadata missing", { "metadata: {name: api-service, namespace: production}\n" },
	  { "" }, "metadata", "required" },
	{ "metadata.name missing", { "name: api-service, " }, { "" },
	  "metadata.name", "required" },
	{ "metadata.name not DNS-1123", { "name: api-service" }, { "name: Api_Service" },
	  "metadata.name",
	  "\"Api_Service\" is not a DNS-1123 name: lowercase letters, digits and '-', "
	  "starting and ending with a letter or digit" },
	{ "metadata.name ends in dash", { "name: api-service" }, { "name: api-" },
	  "metadata.name",
	  "\"api-\" is not a DNS-1123 name: lowercase letters, digits and '-', "
	  "starting and ending with a letter or digit" },
	{ "metadata.name too long",
	  { "name: api-service" },
	  { "name: " A64 A64 A64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
	  "metadata.name", "254 characters; at most 253" },
	{ "metadata.namespace not DNS-1123", { "namespace: production" },
	  { "namespace: prod.eu" }, "metadata.namespace",
	  "\"prod.eu\" is not a DNS-1123 name: lowercase letters, digits and '-', "
	  "starting and ending with a letter or digit" },
	{ "metadata.name not a string", { "name: api-service" }, { "name: 42" },
	  "metadata.name", "must be a string, not a number" },
	{ "spec missing", { "spec:\n" }, { "xspec:\n" }, "spec", "required" },
	{ "spec.service missing", { "  service: {port: 8080, targetPort: 8080}\n" }, { "" },
	  "spec.service", "required" },
	{ "spec.service.port missing", { "port: 8080, " }, { "" },
	  "spec.service.port", "required" },
	{ "spec.service.port zero", { "port: 8080, " }, { "port: 0, " },
	  "spec.service.port", "must be > 0" },
	{ "spec.service.port too big", { "port: 8080, " }, { "port: 70000, " },
	  "spec.service.port", "70000 is over 65535" },
	{ "spec.service.port quoted", { "port: 8080, " }, { "port: \"8080\", " },
	  "spec.service.port", "must be a number, not a string" },
	{ "spec.service.port fractional", { "port: 8080, " }, { "port: 80.5, " },
	  "spec.service.port", "must be an integer, not 80.5" },
	{ "spec.service.targetPort named", { "targetPort: 8080" }, { "targetPort: http" },
	  "spec.service.targetPort", "named ports need Kubernetes; give the number" },
	{ "spec.service.targetPort too big", { "targetPort: 8080" }, { "targetPort: 65536" },
	  "spec.service.targetPort", "65536 is over 65535" },
	{ "spec.analysis missing",
	  { "  analysis:\n    interval: 1m            # any duration: 250ms, 2s, 1m, 1h\n"
	    "    threshold: 5\n    maxWeight: 30\n    stepWeight: 10          # or stepWeights: "
	    "[1, 5, 10, 30]\n    metrics:\n"
	    "    - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}\n"
	    "    - {name: request-duration, thresholdRange: {max: 500}, interval: 1m}\n" },
	  { "" }, "spec.analysis", "required" },
	{ "spec.analysis.interval missing", { "    interval: 1m " }, { "    #" },
	  "spec.analysis.interval", "required" },
	{ "spec.analysis.interval bad unit", { "interval: 1m " }, { "interval: 5x " },
	  "spec.analysis.interval", "not a duration: \"5x\": unknown unit (use ms, s, m or h)" },
	{ "spec.analysis.interval empty", { "interval: 1m " }, { "interval: \"\" " },
	  "spec.analysis.interval", "not a duration: \"\": empty" },
	{ "spec.analysis.interval negative", { "interval: 1m " }, { "interval: -1s " },
	  "spec.analysis.interval", "not a duration: \"-1s\": negative" },
	{ "spec.analysis.interval overflow", { "interval: 1m " },
	  { "interval: 99999999999999999999h " }, "spec.analysis.interval",
	  "not a duration: \"99999999999999999999h\": too large" },
	{ "spec.analysis.interval sub-millisecond", { "interval: 1m " },
	  { "interval: 1.0005s " }, "spec.analysis.interval",
	  "not a duration: \"1.0005s\": finer than a millisecond" },
	{ "spec.analysis.threshold not a number", { "threshold: 5" }, { "threshold: five" },
	  "spec.analysis.threshold", "must be a number, not a string" },
	{ "spec.analysis.maxWeight over 100", { "maxWeight: 30" }, { "maxWeight: 150" },
	  "spec.analysis.maxWeight", "150 is over 100" },
	{ "spec.analysis.maxWeight zero", { "maxWeight: 30" }, { "maxWeight: 0" },
	  "spec.analysis.maxWeight", "must be > 0" },
	{ "spec.analysis.stepWeight zero", { "stepWeight: 10" }, { "stepWeight: 0" },
	  "spec.analysis.stepWeight", "must be > 0" },
	{ "spec.analysis.stepWeight negative", { "stepWeight: 10" }, { "stepWeight: -5" },
	  "spec.analysis.stepWeight", "must be > 0" },
	{ "spec.analysis.stepWeight over maxWeight", { "stepWeight: 10" }, { "stepWeight: 40" },
	  "spec.analysis.stepWeight", "40 is over maxWeight 30" },
	{ "spec.analysis.stepWeight over 100", { "stepWeight: 10" }, { "stepWeight: 150" },
	  "spec.analysis.stepWeight", "150 is over 100" },
	{ "spec.analysis.stepWeight and stepWeights", { "stepWeight: 10" },
	  { "stepWeight: 10\n    stepWeights: [10, 30]" }, "spec.analysis.stepWeights",
	  "give stepWeight or stepWeights, not both" },
	{ "spec.analysis.stepWeight neither", { "    stepWeight: 10 " }, { "    #" },
	  "spec.analysis.stepWeight", "required (or stepWeights; or iterations for blue/green)" },
	{ "spec.analysis.stepWeight neither, iterations 0", { "    stepWeight: 10 " },
	  { "    iterations: 0 #" }, "spec.analysis.stepWeight",
	  "required (or stepWeights; or iterations for blue/green)" },
	{ "spec.analysis.stepWeights not increasing", { "stepWeight: 10" },
	  { "stepWeights: [1, 10, 10, 30]" }, "spec.analysis.stepWeights[2]",
	  "10 is not above the step before it (10)" },
	{ "spec.analysis.stepWeights zero", { "stepWeight: 10" }, { "stepWeights: [0, 30]" },
	  "spec.analysis.stepWeights[0]", "must be > 0" },
	{ "spec.analysis.stepWeights over 100", { "stepWeight: 10", "maxWeight: 30" },
	  { "stepWeights: [50, 150]", "maxWeight: 100" }, "spec.analysis.stepWeights[1]",
	  "150 is over 100" },
	{ "spec.analysis.stepWeights not integer", { "stepWeight: 10" },
	  { "stepWeights: [1.5, 30]" }, "spec.analysis.stepWeights[0]",
	  "must be an integer, not 1.5" },
	{ "spec.analysis.stepWeights empty", { "stepWeight: 10" }, { "stepWeights: []" },
	  "spec.analysis.stepWeights", "must not be empty" },
	{ "spec.analysis.stepWeights not a list", { "stepWeight: 10" }, { "stepWeights: 10" },
	  "spec.analysis.stepWeights", "must be a list, not a number" },
	{ "spec.analysis.maxWeight disagrees with stepWeights", { "stepWeight: 10" },
	  { "stepWeights: [5, 20]" }, "spec.analysis.maxWeight",
	  "30 differs from the last of stepWeights (20), which is the max weight" },
	{ "spec.analysis.stepWeightPromotion zero", { "stepWeight: 10" },
	  { "stepWeight: 10\n    stepWeightPromotion: 0" }, "spec.analysis.stepWeightPromotion",
	  "must be > 0" },
	{ "spec.analysis.stepWeightPromotion over 100", { "stepWeight: 10" },
	  { "stepWeight: 10\n    stepWeightPromotion: 101" },
	  "spec.analysis.stepWeightPromotion", "101 is over 100" },
	{ "spec.analysis.iterations negative", { "stepWeight: 10" },
	  { "stepWeight: 10\n    iterations: -1" }, "spec.analysis.iterations", "must be >= 0" },
	{ "metrics min over 100", { "min: 99" }, { "min: 150" },
	  "spec.analysis.metrics[0].thresholdRange.min", "150 is over 100" },
	{ "metrics min negative", { "min: 99" }, { "min: -1" },
	  "spec.analysis.metrics[0].thresholdRange.min", "must be >= 0" },
	{ "metrics min missing", { "thresholdRange: {min: 99}" }, { "thresholdRange: {}" },
	  "spec.analysis.metrics[0].thresholdRange.min", "required" },
	{ "metrics thresholdRange missing", { "thresholdRange: {min: 99}, " }, { "" },
	  "spec.analysis.metrics[0].thresholdRange.min", "required" },
	{ "metrics max missing", { "thresholdRange: {max: 500}" }, { "thresholdRange: {min: 1}" },
	  "spec.analysis.metrics[1].thresholdRange.max", "required" },
	{ "metrics max zero", { "max: 500" }, { "max: 0" },
	  "spec.analysis.metrics[1].thresholdRange.max", "must be > 0" },
	{ "metrics max under min", { "max: 500" }, { "max: 500, min: 600" },
	  "spec.analysis.metrics[1].thresholdRange.max", "500 is under min 600" },
	{ "metrics min not a number", { "min: 99" }, { "min: high" },
	  "spec.analysis.metrics[0].thresholdRange.min", "must be a number, not a string" },
	{ "metrics thresholdRange unknown key", { "min: 99" }, { "min: 99, mean: 3" },
	  "spec.analysis.metrics[0].thresholdRange.mean", "unknown field" },
	{ "metrics custom name", { "name: request-duration" }, { "name: error-budget" },
	  "spec.analysis.metrics[1].name",
	  "custom metrics need a metrics provider; sluice measures request-success-rate and "
	  "request-duration in the kernel" },
	{ "metrics templateRef", { "name: request-duration, " },
	  { "name: latency, templateRef: {name: latency, namespace: flagger}, " },
	  "spec.analysis.metrics[1].templateRef",
	  "custom metrics need a metrics provider; sluice measures request-success-rate and "
	  "request-duration in the kernel" },
	{ "metrics query", { "name: request-duration, " },
	  { "name: latency, query: \"sum(rate(x[1m]))\", " },
	  "spec.analysis.metrics[1].query",
	  "custom metrics need a metrics provider; sluice measures request-success-rate and "
	  "request-duration in the kernel" },
	{ "metrics name missing", { "name: request-duration, " }, { "" },
	  "spec.analysis.metrics[1].name", "required" },
	{ "metrics interval bad", { "{max: 500}, interval: 1m" }, { "{max: 500}, interval: 1y" },
	  "spec.analysis.metrics[1].interval",
	  "not a duration: \"1y\": unknown unit (use ms, s, m or h)" },
	{ "metrics entry not a mapping",
	  { "    - {name: request-duration, thresholdRange: {max: 500}, interval: 1m}\n" },
	  { "    - request-duration\n" }, "spec.analysis.metrics[1]",
	  "must be a mapping, not a string" },
	{ "metrics not a list", { "    metrics:\n" }, { "    metrics: 3\n    xmetrics:\n" },
	  "spec.analysis.metrics", "must be a list, not a number" },
	{ "revertOnFailure yes (YAML 1.2: a string)", { "revertOnFailure: true" },
	  { "revertOnFailure: yes" }, "spec.revertOnFailure",
	  "must be true or false, not a string" },
	{ "skipAnalysis not a bool", { "revertOnFailure: true" },
	  { "revertOnFailure: true\n  skipAnalysis: 1" }, "spec.skipAnalysis",
	  "must be true or false, not a number" },
	{ "suspend true", { "revertOnFailure: true" },
	  { "revertOnFailure: true\n  suspend: true" }, "spec.suspend",
	  "not supported; use `sluice pause api-service`" },
	{ "spec.steering missing", { "  steering:\n" }, { "  xsteering:\n" },
	  "spec.steering", "required" },
	{ "spec.steering not a mapping", { "  steering:\n" }, { "  steering: on\n  x:\n" },
	  "spec.steering", "must be a mapping, not a string" },
	{ "vip missing", { "    vip: 198.19.0.10 " }, { "    #" }, "spec.steering.vip",
	  "required" },
	{ "vip bad octet", { "vip: 198.19.0.10" }, { "vip: 198.18.1.300" }, "spec.steering.vip",
	  "not an IPv4 or IPv6 address: \"198.18.1.300\"" },
	{ "vip a hostname", { "vip: 198.19.0.10" }, { "vip: api.production.svc" },
	  "spec.steering.vip", "not an IPv4 or IPv6 address: \"api.production.svc\"" },
	{ "vip unspecified", { "vip: 198.19.0.10" }, { "vip: 0.0.0.0" }, "spec.steering.vip",
	  "\"0.0.0.0\" is the unspecified address" },
	{ "vip multicast", { "vip: 198.19.0.10" }, { "vip: \"ff02::1\"" }, "spec.steering.vip",
	  "\"ff02::1\" is a multicast address" },
	{ "protocol sctp", { "protocol: tcp" }, { "protocol: sctp" }, "spec.steering.protocol",
	  "\"sctp\" is not tcp or udp" },
	{ "affinity sticky", { "affinity: connection" }, { "affinity: sticky" },
	  "spec.steering.affinity", "\"sticky\" is not connection or client" },
	{ "weight over 100", { "protocol: tcp" }, { "protocol: tcp\n    weight: 150" },
	  "spec.steering.weight", "150 is over 100" },
	{ "weight negative", { "protocol: tcp" }, { "protocol: tcp\n    weight: -1" },
	  "spec.steering.weight", "must be >= 0" },
	{ "weight finer than a basis point", { "protocol: tcp" },
	  { "protocol: tcp\n    weight: 12.345" }, "spec.steering.weight",
	  "12.345 is finer than 0.01 (one basis point)" },
	{ "weight with an empty canary", { "protocol: tcp", "endpoints: [198.18.3.2]" },
	  { "protocol: tcp\n    weight: 5", "endpoints: []" }, "spec.steering.weight",
	  "must be 0 while the canary has no endpoints" },
	{ "primary missing",
	  { "    primary: {version: v1.3.2, endpoints: [198.18.1.2, 198.18.2.2]}\n" }, { "" },
	  "spec.steering.primary", "required" },
	{ "primary version missing", { "version: v1.3.2, " }, { "" },
	  "spec.steering.primary.version", "required" },
	{ "canary version missing", { "version: v1.4.0, " }, { "" },
	  "spec.steering.canary.version", "required" },
	{ "version with a space", { "version: v1.4.0" }, { "version: \"v1.4 rc\"" },
	  "spec.steering.canary.version", "must be printable ASCII without spaces" },
	{ "version a number", { "version: v1.4.0" }, { "version: 1.4" },
	  "spec.steering.canary.version", "must be a string, not a number" },
	{ "versions equal", { "version: v1.4.0" }, { "version: v1.3.2" },
	  "spec.steering.canary.version",
	  "same as spec.steering.primary.version; a canary is another version" },
	{ "primary endpoints missing", { "version: v1.3.2, endpoints: [198.18.1.2, 198.18.2.2]" },
	  { "version: v1.3.2" }, "spec.steering.primary.endpoints", "required" },
	{ "primary endpoints empty", { "endpoints: [198.18.1.2, 198.18.2.2]" },
	  { "endpoints: []" }, "spec.steering.primary.endpoints", "needs at least one endpoint" },
	{ "endpoint bad octet", { "198.18.2.2]" }, { "198.18.1.300]" },
	  "spec.steering.primary.endpoints[1]", "not an IPv4 or IPv6 address: \"198.18.1.300\"" },
	{ "endpoint port zero", { "198.18.2.2]" }, { "\"198.18.2.2:0\"]" },
	  "spec.steering.primary.endpoints[1]", "port must be 1..65535: \"198.18.2.2:0\"" },
	{ "endpoint port too big", { "198.18.2.2]" }, { "\"198.18.2.2:65536\"]" },
	  "spec.steering.primary.endpoints[1]", "port must be 1..65535: \"198.18.2.2:65536\"" },
	{ "endpoint brackets on IPv4", { "198.18.2.2]" }, { "\"[198.18.2.2]:80\"]" },
	  "spec.steering.primary.endpoints[1]",
	  "brackets are for IPv6 addresses: \"[198.18.2.2]:80\"" },
	{ "endpoint IPv6 for an IPv4 vip", { "198.18.2.2]" }, { "\"fd00:5c::2\"]" },
	  "spec.steering.primary.endpoints[1]", "IPv6 endpoint for an IPv4 vip" },
	{ "endpoint not a string", { "198.18.2.2]" }, { "{ip: 198.18.2.2}]" },
	  "spec.steering.primary.endpoints[1]", "must be a string, not a mapping" },
	{ "endpoint duplicate within a version", { "198.18.2.2]" }, { "\"198.18.1.2:8080\"]" },
	  "spec.steering.primary.endpoints[1]",
	  "\"198.18.1.2:8080\" is the same endpoint as [0]" },
	{ "endpoint duplicate between versions", { "[198.18.3.2]" }, { "[198.18.2.2]" },
	  "spec.steering.canary.endpoints[0]",
	  "\"198.18.2.2\" is also spec.steering.primary.endpoints[1]" },
	{ "endpoint is the vip", { "198.18.2.2]" }, { "198.19.0.10]" },
	  "spec.steering.primary.endpoints[1]", "\"198.19.0.10\" is the vip" },
	{ "cohort host bits", { "[198.18.0.0/28]" }, { "[198.18.0.1/28]" },
	  "spec.steering.cohorts.canary[0]",
	  "\"198.18.0.1/28\" has host bits set; the network is 198.18.0.0/28" },
	{ "cohort in both", { "{canary: [198.18.0.0/28]}" },
	  { "{primary: [198.18.0.0/28], canary: [198.18.0.0/28]}" },
	  "spec.steering.cohorts.canary[0]",
	  "\"198.18.0.0/28\" is also in spec.steering.cohorts.primary" },
	{ "cohort listed twice", { "[198.18.0.0/28]" }, { "[198.18.0.0/28, 198.18.0.0/28]" },
	  "spec.steering.cohorts.canary[1]", "\"198.18.0.0/28\" is listed twice" },
	{ "cohort prefix over 32", { "[198.18.0.0/28]" }, { "[198.18.0.0/33]" },
	  "spec.steering.cohorts.canary[0]", "prefix length over 32: \"198.18.0.0/33\"" },
	{ "cohort garbage", { "[198.18.0.0/28]" }, { "[everyone]" },
	  "spec.steering.cohorts.canary[0]",
	  "not a CIDR such as 198.18.0.0/28: \"everyone\"" },
	{ "cohort IPv6 for an IPv4 vip", { "[198.18.0.0/28]" }, { "[\"fd00:5c::/64\"]" },
	  "spec.steering.cohorts.canary[0]", "IPv6 cohort for an IPv4 vip" },
	{ "cohort unknown version", { "{canary: [198.18.0.0/28]}" },
	  { "{testers: [198.18.0.0/28]}" }, "spec.steering.cohorts.testers", "unknown field" },
	{ "cohort for an empty canary", { "endpoints: [198.18.3.2]" }, { "endpoints: []" },
	  "spec.steering.cohorts.canary",
	  "the canary has no endpoints to pin these clients to" },
	{ "unknown top-level field", { "kind: Canary" }, { "kind: Canary\nextra: 1" },
	  "extra", "unknown field" },
	{ "unknown spec field", { "revertOnFailure: true" },
	  { "revertOnFailure: true\n  rollbackOnFailure: true" }, "spec.rollbackOnFailure",
	  "unknown field" },
	{ "misspelt field gets a hint", { "stepWeight: 10" }, { "stepweight: 10" },
	  "spec.analysis.stepweight", "unknown field; did you mean \"stepWeight\"?" },
	{ "unknown steering field", { "protocol: tcp" }, { "protocol: tcp\n    mode: dsr" },
	  "spec.steering.mode", "unknown field" },
	{ "unknown metadata field", { "namespace: production" },
	  { "namespace: production, color: blue" }, "metadata.color", "unknown field" },
};

static void test_error_case(void **state)
{
	const struct error_case *ec = *state;
	struct spec_errors errs;
	char *doc;

	doc = edit(design_yaml, ec->find[0], ec->repl[0], ec->find[1] ? ec->find[1] : NULL,
		   ec->repl[1], ec->find[2] ? ec->find[2] : NULL, ec->repl[2], NULL);
	parse_fail(doc, &errs);
	expect_error(&errs, ec->path, ec->reason);
	free(doc);
}

/* The same errors in the JSON document: one validator, the same paths. */
static void test_errors_json(void **state)
{
	struct spec_errors errs;
	char *doc;

	(void)state;
	doc = edit(design_json, "\"maxWeight\": 30", "\"maxWeight\": 150", "\"198.18.2.2\"",
		   "\"198.18.1.300\"", "\"min\": 99", "\"min\": 150", NULL);
	parse_fail(doc, &errs);
	assert_int_equal(errs.n, 3);
	expect_error(&errs, "spec.analysis.maxWeight", "150 is over 100");
	/* with maxWeight refused, stepWeight is checked against the default 100 */
	expect_error(&errs, "spec.steering.primary.endpoints[1]",
		     "not an IPv4 or IPv6 address: \"198.18.1.300\"");
	expect_error(&errs, "spec.analysis.metrics[0].thresholdRange.min", "150 is over 100");
	free(doc);

	/* a key is user text: a control character in it cannot break the line */
	doc = edit(design_json, "\"kind\": \"Canary\",", "\"kind\": \"Canary\", \"a\\nb\": 1,",
		   NULL);
	parse_fail(doc, &errs);
	expect_error(&errs, "a?b", "unknown field");
	free(doc);

	/* JSON allows duplicate keys; sluice does not pick one */
	doc = edit(design_json, "\"threshold\": 5,", "\"threshold\": 5, \"threshold\": 6,", NULL);
	parse_fail(doc, &errs);
	expect_error(&errs, "spec.analysis.threshold", "duplicate key");
	free(doc);
}

static void test_multiple_errors(void **state)
{
	struct spec_errors errs;
	char *doc;

	(void)state;
	doc = edit(design_yaml, "maxWeight: 30", "maxWeight: 150", "stepWeight: 10",
		   "stepWeight: 0", "198.18.2.2]", "198.18.1.300]", "kind: Canary",
		   "kind: Canary\nbogus: 1", "protocol: tcp", "protocol: icmp", NULL);
	parse_fail(doc, &errs);
	expect_error(&errs, "spec.analysis.maxWeight", "150 is over 100");
	expect_error(&errs, "spec.analysis.stepWeight", "must be > 0");
	expect_error(&errs, "spec.steering.primary.endpoints[1]",
		     "not an IPv4 or IPv6 address: \"198.18.1.300\"");
	expect_error(&errs, "bogus", "unknown field");
	expect_error(&errs, "spec.steering.protocol", "\"icmp\" is not tcp or udp");
	assert_int_equal(errs.n, 5);
	assert_int_equal(errs.dropped, 0);
	free(doc);
}

/* More errors than the array holds: the rest are counted. */
static void test_errors_dropped(void **state)
{
	char eps[2048] = "endpoints: [", *doc;
	struct spec_errors errs;
	int i;

	(void)state;
	for (i = 0; i < 40; i++)
		snprintf(eps + strlen(eps), sizeof(eps) - strlen(eps), "%s198.18.1.%d00",
			 i ? ", " : "", i + 3);
	strcat(eps, "]");
	doc = edit(design_yaml, "endpoints: [198.18.1.2, 198.18.2.2]", eps, NULL);
	parse_fail(doc, &errs);
	assert_int_equal(errs.n, 32);
	assert_int_equal(errs.dropped, 8);
	free(doc);
}

/* "[a, b, ...]" of @n addresses from 198.18.@third.0 on, malloc'd. */
static char *endpoint_list(int n, int third)
{
	char *s = malloc((size_t)n * 20 + 4);
	int i;

	assert_non_null(s);
	strcpy(s, "[");
	for (i = 0; i < n; i++)
		sprintf(s + strlen(s), "%s198.18.%d.%d", i ? ", " : "", third + i / 200,
			1 + i % 200);
	strcat(s, "]");
	return s;
}

/* Per version at most SPEC_MAX_ENDPOINTS; both together at most SL_MAX_SLOTS. */
static void test_endpoint_limits(void **state)
{
	int per = SPEC_MAX_ENDPOINTS < SL_MAX_SLOTS - 1 ? SPEC_MAX_ENDPOINTS : SL_MAX_SLOTS - 1;
	struct spec_canary *c = new_canary();
	char *p, *k, *doc, reason[128];
	struct spec_errors errs;

	(void)state;
	/* the most that fits */
	p = endpoint_list(per, 100);
	k = endpoint_list(SL_MAX_SLOTS - per, 110);
	doc = edit(design_yaml, "[198.18.1.2, 198.18.2.2]", p, "[198.18.3.2]", k, NULL);
	parse_ok(doc, c);
	assert_int_equal(c->primary.n_endpoints, per);
	assert_int_equal(c->canary.n_endpoints, SL_MAX_SLOTS - per);
	free(doc);
	free(k);

	/* one more, in the canary */
	k = endpoint_list(SL_MAX_SLOTS - per + 1, 110);
	doc = edit(design_yaml, "[198.18.1.2, 198.18.2.2]", p, "[198.18.3.2]", k, NULL);
	parse_fail(doc, &errs);
	snprintf(reason, sizeof(reason), "%d endpoints in primary and canary together; at most %d",
		 SL_MAX_SLOTS + 1, SL_MAX_SLOTS);
	expect_error(&errs, "spec.steering", reason);
	free(doc);
	free(k);
	free(p);

	/* one version over its own limit */
	p = endpoint_list(SPEC_MAX_ENDPOINTS + 1, 100);
	doc = edit(design_yaml, "[198.18.1.2, 198.18.2.2]", p, NULL);
	parse_fail(doc, &errs);
	snprintf(reason, sizeof(reason), "%d endpoints; at most %d per version",
		 SPEC_MAX_ENDPOINTS + 1, SPEC_MAX_ENDPOINTS);
	expect_error(&errs, "spec.steering.primary.endpoints", reason);
	free(doc);
	free(p);
	free(c);
}

/* ---- IPv6, cohorts, the rest of steering ---- */

static void test_ipv6(void **state)
{
	struct spec_canary *c = new_canary();

	(void)state;
	parse_ok(ipv6_yaml, c);
	assert_string_equal(c->name, "web");
	assert_string_equal(c->namespace, "default");
	assert_int_equal(c->port, 80);
	assert_int_equal(c->target_port, 8080);
	assert_int_equal(c->analysis.interval_ms, 250);
	assert_int_equal(c->analysis.max_weight, 30);
	assert_int_equal(c->analysis.step_weight_promotion, 50);
	assert_int_equal(c->analysis.n_metrics, 0);
	check_addr(&c->vip, AF_INET6, "fd00:5c::10");
	assert_int_equal(c->proto, IPPROTO_UDP);
	assert_int_equal(c->affinity, SL_AFFINITY_CLIENT);
	assert_int_equal(c->initial_weight, 1250);
	assert_true(c->revert_on_failure);
	assert_string_equal(c->primary.version, "1.10");
	assert_int_equal(c->primary.n_endpoints, 2);
	check_endpoint(&c->primary.endpoints[0], AF_INET6, "fd00:5c::2", 9090);
	check_endpoint(&c->primary.endpoints[1], AF_INET6, "fd00:5c::3", 8080);
	assert_int_equal(c->canary.n_endpoints, 1);
	check_endpoint(&c->canary.endpoints[0], AF_INET6, "fd00:5c::4", 8080);
	assert_int_equal(c->primary.n_cohorts, 1);
	check_cidr(&c->primary.cohorts[0], AF_INET6, "fd00:5c:1::", 48);
	assert_int_equal(c->canary.n_cohorts, 2);
	check_cidr(&c->canary.cohorts[0], AF_INET6, "fd00:5c:2::", 64);
	check_cidr(&c->canary.cohorts[1], AF_INET6, "fd00:5c:3::7", 128);
	free(c);
}

static void test_ipv6_errors(void **state)
{
	struct spec_errors errs;
	char *doc;

	(void)state;
	doc = edit(ipv6_yaml, "- fd00:5c::3", "- 198.18.1.2", "fd00:5c:2::/64",
		   "fd00:5c:2::1/64", NULL);
	parse_fail(doc, &errs);
	expect_error(&errs, "spec.steering.primary.endpoints[1]", "IPv4 endpoint for an IPv6 vip");
	expect_error(&errs, "spec.steering.cohorts.canary[0]",
		     "\"fd00:5c:2::1/64\" has host bits set; the network is fd00:5c:2::/64");
	free(doc);

	/* unquoted, "[fd00:5c::4]:80" is a flow sequence; the hint says to quote it */
	doc = edit(ipv6_yaml, "- \"[fd00:5c::4]\"", "- [fd00:5c::4]", NULL);
	parse_fail(doc, &errs);
	expect_error(&errs, "spec.steering.canary.endpoints[0]",
		     "must be a string, not a list (quote \"[IPv6]:port\" in YAML)");
	free(doc);

	doc = edit(ipv6_yaml, "\"[fd00:5c::2]:9090\"", "\"[fd00:5c::2]:http\"",
		   "fd00:5c:1::/48", "fd00:5c:1::/129", NULL);
	parse_fail(doc, &errs);
	expect_error(&errs, "spec.steering.primary.endpoints[0]",
		     "port must be 1..65535: \"[fd00:5c::2]:http\"");
	expect_error(&errs, "spec.steering.cohorts.primary[0]",
		     "prefix length over 128: \"fd00:5c:1::/129\"");
	free(doc);
}

static void test_addr_parse(void **state)
{
	struct spec_addr a;

	(void)state;
	assert_int_equal(spec_addr_parse("198.18.1.2", &a), 0);
	assert_int_equal(a.family, AF_INET);
	assert_int_equal(a.addr.v4, htonl(0xc6120102));
	assert_int_equal(a.addr.v6[1], 0);
	assert_int_equal(spec_addr_parse("fd00:5c::2", &a), 0);
	assert_int_equal(a.family, AF_INET6);
	assert_int_equal(a.addr.bytes[0], 0xfd);
	assert_int_equal(a.addr.bytes[15], 2);
	assert_int_equal(spec_addr_parse("::ffff:198.18.1.2", &a), 0);
	assert_int_equal(a.family, AF_INET6);
	assert_int_equal(spec_addr_parse("198.18.1.300", &a), -EINVAL);
	assert_int_equal(spec_addr_parse("198.18.1", &a), -EINVAL);
	assert_int_equal(spec_addr_parse("", &a), -EINVAL);
	assert_int_equal(spec_addr_parse("fd00::5c::2", &a), -EINVAL);
	assert_int_equal(spec_addr_parse("[fd00::2]", &a), -EINVAL);
	assert_int_equal(spec_addr_parse("fe80::1%eth0", &a), -EINVAL);
	assert_int_equal(spec_addr_parse(NULL, &a), -EINVAL);
}

static void test_canary_without_endpoints(void **state)
{
	struct spec_canary *c = new_canary();
	char *doc;

	(void)state;
	doc = edit(design_yaml, "canary:  {version: v1.4.0, endpoints: [198.18.3.2]}",
		   "canary:  {version: v1.4.0}", "    cohorts: {canary: [198.18.0.0/28]}\n", "",
		   NULL);
	parse_ok(doc, c);
	assert_int_equal(c->canary.n_endpoints, 0);
	assert_string_equal(c->canary.version, "v1.4.0");
	round_trip(doc);
	free(doc);
	free(c);
}

static void test_defaults(void **state)
{
	static const char doc[] = "apiVersion: flagger.app/v1beta1\n"
				  "kind: Canary\n"
				  "metadata: {name: tiny}\n"
				  "spec:\n"
				  "  service: {port: 53}\n"
				  "  analysis: {interval: 2s, stepWeight: 20}\n"
				  "  steering:\n"
				  "    vip: 198.19.0.53\n"
				  "    primary: {version: a, endpoints: [198.18.1.53]}\n"
				  "    canary: {version: b, endpoints: [\"198.18.2.53:5353\"]}\n";
	struct spec_canary *c = new_canary();

	(void)state;
	parse_ok(doc, c);
	assert_string_equal(c->namespace, "default");
	assert_int_equal(c->target_port, 53);
	assert_int_equal(c->analysis.threshold, 1);
	assert_int_equal(c->analysis.max_weight, 100);
	assert_int_equal(c->analysis.step_weight, 20);
	assert_int_equal(c->analysis.n_metrics, 0);
	assert_true(c->revert_on_failure);
	assert_false(c->skip_analysis);
	assert_int_equal(c->proto, IPPROTO_TCP);
	assert_int_equal(c->affinity, SL_AFFINITY_CONNECTION);
	assert_int_equal(c->initial_weight, 0);
	check_endpoint(&c->primary.endpoints[0], AF_INET, "198.18.1.53", 53);
	check_endpoint(&c->canary.endpoints[0], AF_INET, "198.18.2.53", 5353);
	free(c);
}

/* ---- Flagger fields sluice accepts without acting on ---- */

/*
 * A manifest as Flagger users write them (podinfo-style), with sluice's
 * steering added: it must load, with every Flagger-only field listed once.
 */
static const char flagger_yaml[] =
	"apiVersion: flagger.app/v1beta1\n"
	"kind: Canary\n"
	"metadata:\n"
	"  name: podinfo\n"
	"  namespace: test\n"
	"  labels: {app: podinfo}\n"
	"  annotations: {owner: team-a}\n"
	"spec:\n"
	"  provider: istio\n"
	"  targetRef:\n"
	"    apiVersion: apps/v1\n"
	"    kind: Deployment\n"
	"    name: podinfo\n"
	"  autoscalerRef:\n"
	"    apiVersion: autoscaling/v2\n"
	"    kind: HorizontalPodAutoscaler\n"
	"    name: podinfo\n"
	"  progressDeadlineSeconds: 60\n"
	"  service:\n"
	"    port: 9898\n"
	"    targetPort: 9898\n"
	"    gateways:\n"
	"    - public-gateway.istio-system.svc.cluster.local\n"
	"    hosts:\n"
	"    - app.example.com\n"
	"    retries: {attempts: 3, perTryTimeout: 1s}\n"
	"  analysis:\n"
	"    interval: 1m\n"
	"    threshold: 10\n"
	"    maxWeight: 50\n"
	"    stepWeight: 5\n"
	"    match:\n"
	"    - headers:\n"
	"        x-canary:\n"
	"          exact: \"insider\"\n"
	"    metrics:\n"
	"    - name: request-success-rate\n"
	"      thresholdRange:\n"
	"        min: 99\n"
	"      interval: 1m\n"
	"    - name: request-duration\n"
	"      threshold: 500\n"
	"      interval: 30s\n"
	"    webhooks:\n"
	"    - name: acceptance-test\n"
	"      type: pre-rollout\n"
	"      url: http://flagger-loadtester.test/\n"
	"      timeout: 30s\n"
	"      metadata:\n"
	"        type: bash\n"
	"        cmd: \"curl -sd 'test' http://podinfo-canary.test:9898/token | grep token\"\n"
	"    alerts:\n"
	"    - name: on-call\n"
	"      severity: error\n"
	"      providerRef: {name: on-call, namespace: flagger}\n"
	"  steering:\n"
	"    vip: 198.19.0.20\n"
	"    primary: {version: 6.0.0, endpoints: [198.18.1.20]}\n"
	"    canary: {version: 6.0.1, endpoints: [198.18.2.20]}\n"
	"status:\n"
	"  phase: Succeeded\n"
	"  failedChecks: 0\n";

static void test_ignored_flagger_fields(void **state)
{
	static const char *const want[] = {
		"spec.provider",
		"spec.targetRef",
		"spec.autoscalerRef",
		"spec.progressDeadlineSeconds",
		"spec.service.gateways",
		"spec.service.hosts",
		"spec.service.retries",
		"spec.analysis.match",
		"spec.analysis.alerts",
	};
	struct spec_canary *c = new_canary();
	int i;

	(void)state;
	parse_ok(flagger_yaml, c);
	for (i = 0; i < c->n_ignored; i++)
		print_message("# ignored %s\n", c->ignored[i]);
	assert_int_equal(c->n_ignored, (int)ARRAY_SIZE(want));
	for (i = 0; i < (int)ARRAY_SIZE(want); i++)
		assert_string_equal(c->ignored[i], want[i]);
	assert_int_equal(c->ignored_dropped, 0);
	/* what sluice does read */
	assert_string_equal(c->namespace, "test");
	assert_int_equal(c->analysis.threshold, 10);
	assert_int_equal(c->analysis.max_weight, 50);
	assert_int_equal(c->analysis.step_weight, 5);
	/* the deprecated metric threshold is the max of a duration */
	assert_int_equal(c->analysis.metrics[1].kind, SPEC_METRIC_DURATION);
	assert_true(c->analysis.metrics[1].has_max);
	assert_true(c->analysis.metrics[1].max == 500);
	assert_int_equal(c->analysis.metrics[1].interval_ms, 30000);
	assert_string_equal(c->primary.version, "6.0.0");
	/* webhooks are read: Flagger's fields, Flagger's meaning */
	assert_int_equal(c->analysis.n_webhooks, 1);
	assert_string_equal(c->analysis.webhooks[0].name, "acceptance-test");
	assert_int_equal(c->analysis.webhooks[0].type, WH_PRE_ROLLOUT);
	assert_string_equal(c->analysis.webhooks[0].url, "http://flagger-loadtester.test/");
	assert_int_equal(c->analysis.webhooks[0].timeout_ms, 30000);
	assert_int_equal(c->analysis.webhooks[0].n_meta, 2);
	assert_string_equal(c->analysis.webhooks[0].meta_key[1], "cmd");
	free(c);
}

/* Webhook mistakes, each with its path. */
static void test_webhook_errors(void **state)
{
	static const char doc[] =
		"apiVersion: flagger.app/v1beta1\n"
		"kind: Canary\n"
		"metadata: {name: w}\n"
		"spec:\n"
		"  service: {port: 80}\n"
		"  analysis:\n"
		"    interval: 1s\n"
		"    stepWeight: 10\n"
		"    webhooks:\n"
		"    - {name: a, type: pre-deploy, url: http://x/}\n"
		"    - {name: a, url: ftp://x/, timeout: 5x}\n"
		"    - {type: rollout, url: http://x/, retries: 11, metadata: {k: 1}}\n"
		"  steering:\n"
		"    vip: 198.19.0.20\n"
		"    primary: {version: v1, endpoints: [198.18.1.20]}\n";
	struct spec_canary *c = new_canary();
	struct spec_errors errs = { 0 };
	static const char *const paths[] = {
		"spec.analysis.webhooks[0].type",     "spec.analysis.webhooks[1].name",
		"spec.analysis.webhooks[1].url",      "spec.analysis.webhooks[1].timeout",
		"spec.analysis.webhooks[2].name",     "spec.analysis.webhooks[2].retries",
		"spec.analysis.webhooks[2].metadata.k",
	};

	(void)state;
	assert_int_equal(spec_parse_buffer(doc, sizeof(doc) - 1, c, &errs), -EINVAL);
	for (int i = 0; i < errs.n; i++)
		print_message("# %s: %s\n", errs.e[i].path, errs.e[i].reason);
	for (size_t k = 0; k < ARRAY_SIZE(paths); k++) {
		bool found = false;

		for (int i = 0; i < errs.n; i++)
			found |= !strcmp(errs.e[i].path, paths[k]);
		if (!found)
			fail_msg("no error at %s", paths[k]);
	}
	free(c);
}

/* Flagger's deprecated spec.canaryAnalysis is read when spec.analysis is absent. */
static void test_canary_analysis_alias(void **state)
{
	struct spec_canary *c = new_canary();
	struct spec_errors errs;
	char *doc;

	(void)state;
	doc = edit(design_yaml, "  analysis:", "  canaryAnalysis:", NULL);
	parse_ok(doc, c);
	check_design_values(c);
	free(doc);

	doc = edit(design_yaml, "  analysis:", "  canaryAnalysis: {interval: 5m}\n  analysis:",
		   NULL);
	parse_ok(doc, c);
	check_design_values(c);
	assert_int_equal(c->n_ignored, 1);
	assert_string_equal(c->ignored[0], "spec.canaryAnalysis");
	free(doc);

	doc = edit(design_yaml, "  analysis:", "  canaryAnalysis:", "maxWeight: 30",
		   "maxWeight: 300", NULL);
	parse_fail(doc, &errs);
	expect_error(&errs, "spec.canaryAnalysis.maxWeight", "300 is over 100");
	free(doc);
	free(c);
}

static void test_ignored_overflow(void **state)
{
	char *doc, more[1024] = "spec:\n";
	struct spec_canary *c = new_canary();
	static const char *const keys[] = {
		"provider", "metricsServer", "targetRef", "autoscalerRef", "ingressRef",
		"routeRef", "upstreamRef", "progressDeadlineSeconds", "revertOnDeletion",
	};
	static const char *const svc_keys[] = {
		"name", "portName", "appProtocol", "portDiscovery", "timeout", "gateways",
		"gatewayRefs", "hosts", "delegation", "trafficPolicy", "match",
	};
	char svc[1024] = "{port: 8080, targetPort: 8080";
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(keys); i++)
		snprintf(more + strlen(more), sizeof(more) - strlen(more), "  %s: x\n", keys[i]);
	for (i = 0; i < ARRAY_SIZE(svc_keys); i++)
		snprintf(svc + strlen(svc), sizeof(svc) - strlen(svc), ", %s: x", svc_keys[i]);
	strcat(svc, "}");
	doc = edit(design_yaml, "spec:\n", more, "{port: 8080, targetPort: 8080}", svc, NULL);
	parse_ok(doc, c);
	assert_int_equal(c->n_ignored, 16);
	assert_int_equal(c->ignored_dropped, (int)(ARRAY_SIZE(keys) + ARRAY_SIZE(svc_keys)) - 16);
	assert_string_equal(c->ignored[0], "spec.provider");
	free(doc);
	free(c);
}

/* ---- the normalized form ---- */

static void round_trip(const char *doc)
{
	struct spec_canary *a = new_canary(), *b = new_canary();
	char *json;

	parse_ok(doc, a);
	json = spec_to_json(a);
	assert_non_null(json);
	parse_ok(json, b);
	assert_canary_equal(a, b);
	/* and the normalized form is a fixed point */
	{
		char *again = spec_to_json(b);

		assert_non_null(again);
		assert_string_equal(json, again);
		free(again);
	}
	free(json);
	free(a);
	free(b);
}

static void test_round_trip(void **state)
{
	char *doc;

	(void)state;
	round_trip(design_yaml);
	round_trip(ipv6_yaml);
	round_trip(flagger_yaml);
	doc = edit(design_yaml, "interval: 1m ", "interval: 1h30m ", "stepWeight: 10",
		   "iterations: 7\n    stepWeightPromotion: 25", "revertOnFailure: true",
		   "revertOnFailure: false\n  skipAnalysis: true", NULL);
	round_trip(doc);
	free(doc);
	doc = edit(design_yaml, "interval: 1m ", "interval: 1.5s ", "{min: 99}",
		   "{min: 99.95, max: 100}", "{max: 500}", "{max: 0.25, min: 0.125}", NULL);
	round_trip(doc);
	free(doc);
}

static void test_to_json_content(void **state)
{
	struct spec_canary *c = new_canary();
	char *json;

	(void)state;
	parse_ok(design_yaml, c);
	json = spec_to_json(c);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"interval\":\t\"1m\""));
	assert_non_null(strstr(json, "\"intervalMs\":\t60000"));
	assert_non_null(strstr(json, "\"198.18.1.2:8080\""));
	assert_non_null(strstr(json, "\"198.18.0.0/28\""));
	assert_null(strstr(json, "\"weight\""));  /* not given: the analysis drives it */
	assert_non_null(strstr(json, "\"affinity\":\t\"connection\""));
	free(json);

	c->analysis.interval_ms = 5400250;
	c->initial_weight = 1250;
	c->has_initial_weight = true;
	json = spec_to_json(c);
	assert_non_null(strstr(json, "\"interval\":\t\"1h30m250ms\""));
	assert_non_null(strstr(json, "\"weight\":\t12.5"));
	free(json);
	free(c);
}

/* ---- what comes in the door ---- */

static void test_garbage(void **state)
{
	static const struct {
		const char *doc;
		size_t len;
		const char *reason; /* NULL: any error will do */
	} cases[] = {
		{ "", 0, "empty document" },
		{ "   \n\t\n", 6, "empty document" },
		{ "# just a comment\n", 17, "empty document" },
		{ "hello", 5, "a Canary is a mapping, not a string" },
		{ "[1, 2]", 6, "a Canary is a mapping, not a list" },
		{ "42", 2, "a Canary is a mapping, not a number" },
		{ "~", 1, "a Canary is a mapping, not null" },
		{ "{", 1, NULL },
		{ "{\"apiVersion\": ", 15, NULL },
		{ "{\"a\": 1} trailing", 17, NULL },
		{ "a: [1, 2", 8, NULL },
		{ "a: b: c", 7, NULL },
		{ "\t- x", 4, NULL },
		{ "\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00", 10, NULL },
		{ "\xff\xfe\xfd garbage", 12, NULL },
		{ "a: \"x\\0y\"", 9, NULL },
		{ "a: 1\nb: &x 2\nc: *x\n", 19, "line 2, column 4: anchors (&x) are not supported; "
					      "write the value out" },
		{ "a: 1\na: 2\n", 10, "line 2, column 1: duplicate key \"a\"" },
		{ "? [a]\n: 1\n", 10, NULL },
		{ "{\"a\": 1}\n\0{\"b\": 2}", 17, "NUL byte at offset 9; a spec is text" },
		{ "a: !custom 1\n", 13, NULL },
	};
	struct spec_canary *c = new_canary();
	struct spec_errors errs;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		print_message("# case %zu\n", i);
		assert_int_not_equal(spec_parse_buffer(cases[i].doc, cases[i].len, c, &errs), 0);
		assert_true(errs.n > 0);
		if (cases[i].reason)
			assert_string_equal(errs.e[0].reason, cases[i].reason);
	}
	assert_int_equal(spec_parse_buffer(NULL, 0, c, &errs), -EINVAL);
	free(c);
}

/* Nesting far past anything a manifest needs: refused, not a stack overflow. */
static void test_deep_nesting(void **state)
{
	static const char *const opens[] = { "[", "{\"a\": ", "{a: ", "- " };
	struct spec_canary *c = new_canary();
	struct spec_errors errs;
	size_t i, k, n = 100000;
	char *doc, *p;

	(void)state;
	for (k = 0; k < ARRAY_SIZE(opens); k++) {
		size_t w = strlen(opens[k]);

		doc = malloc(n * w + 1);
		assert_non_null(doc);
		for (i = 0, p = doc; i < n; i++, p += w)
			memcpy(p, opens[k], w);
		*p = '\0';
		assert_int_equal(spec_parse_buffer(doc, strlen(doc), c, &errs), -EINVAL);
		assert_true(errs.n > 0);
		free(doc);
	}

	/* block mappings, one more indent per level */
	doc = malloc(200 * 204);
	assert_non_null(doc);
	for (i = 0, p = doc; i < 200; i++)
		p += sprintf(p, "%*sa:\n", (int)i, "");
	assert_int_equal(spec_parse_buffer(doc, strlen(doc), c, &errs), -EINVAL);
	assert_string_equal(errs.e[0].reason, "line 65, column 65: nested more than 64 levels");
	free(doc);
	free(c);
}

/* cJSON's allocator fails after this many calls: each allocation in turn. */
static int alloc_budget = -1;

static void *failing_malloc(size_t n)
{
	if (alloc_budget == 0)
		return NULL;
	if (alloc_budget > 0)
		alloc_budget--;
	return malloc(n);
}

static void test_out_of_memory(void **state)
{
	cJSON_Hooks hooks = { .malloc_fn = failing_malloc, .free_fn = free };
	struct spec_canary *c = new_canary(), *d = new_canary();
	struct spec_errors errs;
	char *full, *out;
	int budget, err;
	bool failed_once = false;

	(void)state;
	parse_ok(ipv6_yaml, c);
	full = spec_to_json(c);
	assert_non_null(full);
	cJSON_InitHooks(&hooks);
	for (budget = 0; budget < 400; budget++) {
		alloc_budget = budget;
		out = spec_to_json(c);
		/* all or nothing: never a document with a field missing */
		if (out)
			assert_string_equal(out, full);
		else
			failed_once = true;
		free(out);

		alloc_budget = budget;
		err = spec_parse_buffer(design_yaml, strlen(design_yaml), d, &errs);
		assert_true(err == 0 || err == -ENOMEM);
		alloc_budget = budget;
		err = spec_parse_buffer(design_json, strlen(design_json), d, &errs);
		assert_true(err == 0 || err == -ENOMEM);
	}
	alloc_budget = -1;
	cJSON_InitHooks(NULL);
	assert_true(failed_once);
	free(full);
	free(c);
	free(d);
}

static void test_number_ranges(void **state)
{
	struct spec_errors errs;
	char *doc;

	(void)state;
	doc = edit(design_yaml, "port: 8080, ", "port: 1e20, ", "threshold: 5", "threshold: .inf",
		   NULL);
	parse_fail(doc, &errs);
	expect_error(&errs, "spec.service.port", "1e+20 is out of range");
	expect_error(&errs, "spec.analysis.threshold", "must be a finite number");
	free(doc);
}

/* Every prefix of valid documents: an error or a valid spec, never a crash or a leak. */
static void test_truncated(void **state)
{
	const char *docs[] = { design_yaml, design_json, ipv6_yaml, flagger_yaml };
	struct spec_canary *c = new_canary();
	struct spec_errors errs;
	size_t d, len;

	(void)state;
	for (d = 0; d < ARRAY_SIZE(docs); d++) {
		size_t full = strlen(docs[d]);

		for (len = 0; len < full; len++) {
			/* a heap copy so valgrind sees any read past the given length */
			char *buf = malloc(len ? len : 1);
			int err;

			assert_non_null(buf);
			memcpy(buf, docs[d], len);
			err = spec_parse_buffer(buf, len, c, &errs);
			assert_true(err == 0 || err == -EINVAL);
			assert_true(err == 0 ? errs.n == 0 : errs.n > 0);
			free(buf);
		}
		/* the one prefix certain to fail in the middle of a field */
		assert_int_equal(spec_parse_buffer(docs[d], full / 2, c, &errs), -EINVAL);
	}
	free(c);
}

static void test_yaml_documents(void **state)
{
	struct spec_canary *c = new_canary();
	struct spec_errors errs;
	char *doc;
	size_t n = strlen(design_yaml);

	(void)state;
	/* a leading --- and an empty trailing document are fine */
	doc = malloc(n + 32);
	assert_non_null(doc);
	sprintf(doc, "---\n%s---\n", design_yaml);
	parse_ok(doc, c);
	check_design_values(c);

	sprintf(doc, "%s---\n%s", design_yaml, "kind: Canary\n");
	parse_fail(doc, &errs);
	assert_string_equal(errs.e[0].path, "");
	assert_string_equal(errs.e[0].reason,
			    "line 22, column 1: a second YAML document; sluice reads one Canary "
			    "per file");
	free(doc);
	free(c);
}

static void test_yaml_scalars(void **state)
{
	static const char doc[] = "a: ~\n"
				  "b: null\n"
				  "c: True\n"
				  "d: FALSE\n"
				  "e: yes\n"
				  "f: 0x1F90\n"
				  "g: 0o17\n"
				  "h: -12\n"
				  "i: 1.5e3\n"
				  "j: .inf\n"
				  "k: \"8080\"\n"
				  "l: '1.4'\n"
				  "m: 1.4.0\n"
				  "n: 198.18.1.2\n"
				  "o: !!str 42\n"
				  "p: |\n  text\n"
				  "q: {x: [1, {y: 2}], z: []}\n"
				  "r:\n"
				  "s: 1:30\n"
				  "t: .5\n"
				  "10: ten\n";
	char err[128];
	cJSON *root, *it;

	(void)state;
	assert_int_equal(yaml_to_cjson(doc, strlen(doc), &root, err, sizeof(err)), 0);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(root, "a")));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(root, "b")));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(root, "c")));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(root, "d")));
	assert_string_equal(cJSON_GetObjectItem(root, "e")->valuestring, "yes");
	assert_true(cJSON_GetObjectItem(root, "f")->valuedouble == 8080);
	assert_true(cJSON_GetObjectItem(root, "g")->valuedouble == 15);
	assert_true(cJSON_GetObjectItem(root, "h")->valuedouble == -12);
	assert_true(cJSON_GetObjectItem(root, "i")->valuedouble == 1500);
	assert_true(isinf(cJSON_GetObjectItem(root, "j")->valuedouble));
	assert_string_equal(cJSON_GetObjectItem(root, "k")->valuestring, "8080");
	assert_string_equal(cJSON_GetObjectItem(root, "l")->valuestring, "1.4");
	assert_string_equal(cJSON_GetObjectItem(root, "m")->valuestring, "1.4.0");
	assert_string_equal(cJSON_GetObjectItem(root, "n")->valuestring, "198.18.1.2");
	assert_string_equal(cJSON_GetObjectItem(root, "o")->valuestring, "42");
	assert_string_equal(cJSON_GetObjectItem(root, "p")->valuestring, "text\n");
	it = cJSON_GetObjectItem(root, "q");
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(it, "x")));
	assert_true(cJSON_GetArrayItem(cJSON_GetObjectItem(it, "x"), 1)->child->valuedouble == 2);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(it, "z")), 0);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(root, "r")));
	assert_string_equal(cJSON_GetObjectItem(root, "s")->valuestring, "1:30");
	assert_true(cJSON_GetObjectItem(root, "t")->valuedouble == 0.5);
	assert_string_equal(cJSON_GetObjectItem(root, "10")->valuestring, "ten");
	cJSON_Delete(root);

	assert_int_equal(yaml_to_cjson("a: *b\n", 6, &root, err, sizeof(err)), -EINVAL);
	assert_null(root);
	assert_string_equal(err, "line 1, column 4: aliases (*b) are not supported; write the "
				 "value out");
	assert_int_equal(yaml_to_cjson("a: [1\n", 6, &root, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line "));
}

/* null means "not set", as in Kubernetes */
static void test_null_is_absent(void **state)
{
	struct spec_canary *c = new_canary();
	struct spec_errors errs;
	char *doc;

	(void)state;
	doc = edit(design_yaml, "maxWeight: 30", "maxWeight: ~", "protocol: tcp", "protocol:",
		   NULL);
	parse_ok(doc, c);
	assert_int_equal(c->analysis.max_weight, 100);
	assert_int_equal(c->proto, IPPROTO_TCP);
	free(doc);
	doc = edit(design_yaml, "vip: 198.19.0.10", "vip: null", NULL);
	parse_fail(doc, &errs);
	expect_error(&errs, "spec.steering.vip", "required");
	free(doc);
	free(c);
}

static void test_print_errors(void **state)
{
	struct spec_errors errs = { 0 };
	char *out = NULL;
	size_t size = 0;
	FILE *f;

	(void)state;
	errs.n = 2;
	strcpy(errs.e[0].path, "spec.analysis.maxWeight");
	strcpy(errs.e[0].reason, "150 is over 100");
	strcpy(errs.e[1].reason, "line 3, column 5: mapping values are not allowed");
	errs.dropped = 4;
	f = open_memstream(&out, &size);
	assert_non_null(f);
	spec_print_errors(f, "canary.yaml", &errs);
	fclose(f);
	assert_string_equal(out, "canary.yaml: spec.analysis.maxWeight: 150 is over 100\n"
				 "canary.yaml: line 3, column 5: mapping values are not allowed\n"
				 "canary.yaml: ... and 4 more errors\n");
	free(out);
}

static void test_parse_file(void **state)
{
	char path[] = "/tmp/test_spec.XXXXXX";
	struct spec_canary *c = new_canary();
	struct spec_errors errs;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, design_json, strlen(design_json)), (ssize_t)strlen(design_json));
	close(fd);
	assert_int_equal(spec_parse_file(path, c, &errs), 0);
	check_design_values(c);
	unlink(path);

	assert_int_equal(spec_parse_file(path, c, &errs), -ENOENT);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.e[0].path, "");
	assert_string_equal(errs.e[0].reason, "cannot read: No such file or directory");
	assert_int_equal(spec_parse_file("/tmp", c, &errs), -EISDIR);
	assert_string_equal(errs.e[0].reason, "not a regular file");
	free(c);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_design_example_yaml),
		cmocka_unit_test(test_design_example_json),
		cmocka_unit_test(test_json_falls_back_to_yaml),
		cmocka_unit_test(test_durations_valid),
		cmocka_unit_test(test_durations_invalid),
		cmocka_unit_test(test_interval_forms),
		cmocka_unit_test(test_step_weights),
		cmocka_unit_test(test_errors_json),
		cmocka_unit_test(test_multiple_errors),
		cmocka_unit_test(test_errors_dropped),
		cmocka_unit_test(test_endpoint_limits),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_ipv6_errors),
		cmocka_unit_test(test_addr_parse),
		cmocka_unit_test(test_canary_without_endpoints),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_ignored_flagger_fields),
		cmocka_unit_test(test_webhook_errors),
		cmocka_unit_test(test_canary_analysis_alias),
		cmocka_unit_test(test_ignored_overflow),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_to_json_content),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_number_ranges),
		cmocka_unit_test(test_out_of_memory),
		cmocka_unit_test(test_yaml_documents),
		cmocka_unit_test(test_yaml_scalars),
		cmocka_unit_test(test_null_is_absent),
		cmocka_unit_test(test_print_errors),
		cmocka_unit_test(test_parse_file),
	};
	/* One TAP line per error case, named after it. */
	static struct CMUnitTest tests[ARRAY_SIZE(fixed) + ARRAY_SIZE(error_cases)];
	size_t i;

	cmocka_set_message_output(CM_OUTPUT_TAP);
	for (i = 0; i < ARRAY_SIZE(fixed); i++)
		tests[i] = fixed[i];
	for (i = 0; i < ARRAY_SIZE(error_cases); i++) {
		struct CMUnitTest *t = &tests[ARRAY_SIZE(fixed) + i];

		t->name = error_cases[i].name;
		t->test_func = test_error_case;
		t->initial_state = (void *)&error_cases[i];
	}
	return cmocka_run_group_tests_name("spec", tests, NULL, NULL);
}
