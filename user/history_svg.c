// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A hand-made SVG: three stacked panels sharing a time axis (canary weight,
 * success rate by version, p99 by version), a dashed line per threshold and
 * a marker per decision. Plain SVG 1.1 with no scripts or external fonts,
 * so any browser or image viewer shows it.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "history_svg.h"
#include "json_util.h"

#define W 960
#define LEFT 70
#define RIGHT 70
#define PANEL_H 150
#define GAP 45
#define TOP 110

struct point {
	double t; /* seconds since the attempt's first record */
	double weight;
	bool has_c_rate, has_p_rate, has_c_p99, has_p99;
	double c_rate, p_rate, c_p99, p_p99;
	const char *action, *reason, *by;
};

static double iso_seconds(const char *s)
{
	struct tm tm = { 0 };
	int ms = 0;
	const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

	if (!rest)
		return 0;
	if (*rest == '.')
		ms = atoi(rest + 1);
	return (double)timegm(&tm) + ms / 1000.0;
}

/* XML text: the five characters that must be escaped. */
static void xml(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		default: fputc(*s, f);
		}
	}
}

static double px_x(double t, double t_max)
{
	return LEFT + (W - LEFT - RIGHT) * (t_max > 0 ? t / t_max : 0);
}

static double px_y(int panel, double v, double lo, double hi)
{
	double top = TOP + panel * (PANEL_H + GAP);

	if (v < lo)
		v = lo;
	if (v > hi)
		v = hi;
	return top + PANEL_H * (1 - (v - lo) / (hi - lo));
}

static void panel_frame(FILE *f, int panel, const char *title, double lo, double hi,
			const char *unit)
{
	double top = TOP + panel * (PANEL_H + GAP);

	fprintf(f, "<rect x='%d' y='%.1f' width='%d' height='%d' fill='#fafafa' stroke='#bbb'/>\n",
		LEFT, top, W - LEFT - RIGHT, PANEL_H);
	fprintf(f, "<text x='%d' y='%.1f' font-size='13' font-weight='bold' fill='#333'>%s</text>\n",
		LEFT + 8, top + 16, title);
	for (int k = 0; k <= 4; k++) {
		double v = lo + (hi - lo) * k / 4, y = px_y(panel, v, lo, hi);

		fprintf(f, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#e4e4e4'/>\n", LEFT, y,
			W - RIGHT, y);
		fprintf(f, "<text x='%d' y='%.1f' font-size='11' text-anchor='end'>%.4g%s</text>\n",
			LEFT - 6, y + 4, v, unit);
	}
}

static void threshold_line(FILE *f, int panel, double v, double lo, double hi,
			   const char *label)
{
	double y = px_y(panel, v, lo, hi);

	fprintf(f, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#c0392b' "
		   "stroke-dasharray='6,4'/>\n", LEFT, y, W - RIGHT, y);
	fprintf(f, "<text x='%d' y='%.1f' font-size='11' fill='#c0392b' text-anchor='end'>%s</text>\n",
		W - RIGHT - 4, y - 4, label);
}

/* A series as a polyline with a dot at each point that has a value. */
static void series(FILE *f, const struct point *p, int n, double t_max, int panel, double lo,
		   double hi, size_t has_off, size_t val_off, const char *color)
{
	bool open = false;

	for (int i = 0; i < n; i++) {
		bool has = *(const bool *)((const char *)&p[i] + has_off);
		double v = *(const double *)((const char *)&p[i] + val_off);

		if (!has)
			continue;
		if (!open) {
			fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", color);
			open = true;
		}
		fprintf(f, "%.1f,%.1f ", px_x(p[i].t, t_max), px_y(panel, v, lo, hi));
	}
	if (open)
		fputs("'/>\n", f);
	for (int i = 0; i < n; i++) {
		bool has = *(const bool *)((const char *)&p[i] + has_off);
		double v = *(const double *)((const char *)&p[i] + val_off);

		if (has)
			fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n",
				px_x(p[i].t, t_max), px_y(panel, v, lo, hi), color);
	}
}

static const char *action_color(const char *a)
{
	if (!strcmp(a, "rollback") || !strcmp(a, "freeze"))
		return "#c0392b";
	if (!strcmp(a, "hold"))
		return "#e67e22";
	if (!strcmp(a, "promote"))
		return "#27ae60";
	if (!strcmp(a, "wait"))
		return "#8e44ad";
	return "#7f8c8d";
}

int history_svg(const cJSON *attempt, const char *path)
{
	const cJSON *decisions = cJSON_GetObjectItemCaseSensitive(attempt, "decisions"), *d;
	int n = cJSON_GetArraySize(decisions), i = 0;
	struct point *p = calloc(n ? n : 1, sizeof(*p));
	double t0 = 0, t_max = 1, rate_lo = 100, p99_hi = 1, min_rate = -1, max_p99 = -1;
	FILE *f;

	if (!p)
		return -ENOMEM;
	cJSON_ArrayForEach(d, decisions) {
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(d, "window");
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(w, "canary");
		const cJSON *pr = cJSON_GetObjectItemCaseSensitive(w, "primary");
		const cJSON *m;
		double t = iso_seconds(json_str(d, "time"));

		if (i == 0)
			t0 = t;
		p[i].t = t - t0;
		p[i].weight = json_num(d, "weight_pct");
		p[i].action = json_str(d, "action");
		p[i].reason = json_str(d, "reason");
		p[i].by = json_str(d, "by");
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "has_data"))) {
			p[i].has_c_rate = true;
			p[i].c_rate = json_num(c, "success_rate_pct");
		}
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pr, "has_data"))) {
			p[i].has_p_rate = true;
			p[i].p_rate = json_num(pr, "success_rate_pct");
		}
		if (cJSON_GetObjectItemCaseSensitive(c, "latency_p99_ms")) {
			p[i].has_c_p99 = true;
			p[i].c_p99 = json_num(c, "latency_p99_ms");
		}
		if (cJSON_GetObjectItemCaseSensitive(pr, "latency_p99_ms")) {
			p[i].has_p99 = true;
			p[i].p_p99 = json_num(pr, "latency_p99_ms");
		}
		/* thresholds from the checks that carried them */
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(
					      cJSON_GetObjectItemCaseSensitive(d, "check"), "metrics")) {
			if (!strcmp(json_str(m, "name"), "request-success-rate"))
				min_rate = json_num(m, "threshold");
			else
				max_p99 = json_num(m, "threshold");
		}
		if (p[i].has_c_rate && p[i].c_rate < rate_lo)
			rate_lo = p[i].c_rate;
		if (p[i].has_p_rate && p[i].p_rate < rate_lo)
			rate_lo = p[i].p_rate;
		if (p[i].has_c_p99 && p[i].c_p99 > p99_hi)
			p99_hi = p[i].c_p99;
		if (p[i].has_p99 && p[i].p_p99 > p99_hi)
			p99_hi = p[i].p_p99;
		if (p[i].t > t_max)
			t_max = p[i].t;
		i++;
	}
	if (min_rate >= 0 && min_rate < rate_lo)
		rate_lo = min_rate;
	rate_lo = floor(rate_lo / 5) * 5 - (rate_lo >= 100 ? 5 : 0);
	if (rate_lo < 0)
		rate_lo = 0;
	if (max_p99 > p99_hi)
		p99_hi = max_p99;
	p99_hi *= 1.15;

	f = fopen(path, "w");
	if (!f) {
		free(p);
		return -errno;
	}
	fprintf(f, "<?xml version='1.0' encoding='UTF-8'?>\n"
		   "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
		   "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'>\n"
		   "<rect width='100%%' height='100%%' fill='white'/>\n",
		W, TOP + 3 * (PANEL_H + GAP) + 10);
	fputs("<text x='70' y='28' font-size='17' font-weight='bold'>", f);
	xml(f, json_str(attempt, "rollout"));
	fprintf(f, " - attempt %.0f: ", json_num(attempt, "attempt"));
	xml(f, json_str(attempt, "primary_version"));
	fputs(" -&gt; ", f);
	xml(f, json_str(attempt, "canary_version"));
	fputs(": ", f);
	xml(f, json_str(attempt, "outcome"));
	fputs("</text>\n<text x='70' y='48' font-size='12' fill='#555'>", f);
	xml(f, json_str(attempt, "reason"));
	fputs("</text>\n", f);

	panel_frame(f, 0, "canary weight", 0, 100, "%");
	panel_frame(f, 1, "success rate (canary red, primary blue)", rate_lo, 100, "%");
	panel_frame(f, 2, "p99 latency (canary red, primary blue)", 0, p99_hi, "ms");
	if (min_rate >= 0) {
		char l[48];

		snprintf(l, sizeof(l), "min %g%%", min_rate);
		threshold_line(f, 1, min_rate, rate_lo, 100, l);
	}
	if (max_p99 >= 0) {
		char l[48];

		snprintf(l, sizeof(l), "max %g ms", max_p99);
		threshold_line(f, 2, max_p99, 0, p99_hi, l);
	}

	/* decisions: a marker down all panels, the action on top */
	for (i = 0; i < n; i++) {
		double x = px_x(p[i].t, t_max);
		const char *col = action_color(p[i].action);

		fprintf(f, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='%s' stroke-opacity='0.5' "
			   "stroke-dasharray='2,3'/>\n", x, TOP, x, TOP + 3 * PANEL_H + 2 * GAP, col);
		fprintf(f, "<text x='%.1f' y='%d' font-size='10' fill='%s' "
			   "transform='rotate(-35 %.1f %d)'><title>", x + 2, TOP - 2, col, x + 2,
			TOP - 2);
		xml(f, p[i].reason);
		fputs("</title>", f);
		xml(f, p[i].action);
		fputs("</text>\n", f);
	}

	/* weight: a step line, the weight holding until the next decision */
	fputs("<polyline fill='none' stroke='#2c3e50' stroke-width='2.5' points='", f);
	for (i = 0; i < n; i++) {
		if (i)
			fprintf(f, "%.1f,%.1f ", px_x(p[i].t, t_max), px_y(0, p[i - 1].weight, 0, 100));
		fprintf(f, "%.1f,%.1f ", px_x(p[i].t, t_max), px_y(0, p[i].weight, 0, 100));
	}
	fputs("'/>\n", f);

	series(f, p, n, t_max, 1, rate_lo, 100, offsetof(struct point, has_p_rate),
	       offsetof(struct point, p_rate), "#2980b9");
	series(f, p, n, t_max, 1, rate_lo, 100, offsetof(struct point, has_c_rate),
	       offsetof(struct point, c_rate), "#c0392b");
	series(f, p, n, t_max, 2, 0, p99_hi, offsetof(struct point, has_p99),
	       offsetof(struct point, p_p99), "#2980b9");
	series(f, p, n, t_max, 2, 0, p99_hi, offsetof(struct point, has_c_p99),
	       offsetof(struct point, c_p99), "#c0392b");

	/* time axis under the last panel */
	for (int k = 0; k <= 5; k++) {
		double t = t_max * k / 5;

		fprintf(f, "<text x='%.1f' y='%d' font-size='11' text-anchor='middle'>+%.1fs</text>\n",
			px_x(t, t_max), TOP + 3 * PANEL_H + 2 * GAP + 16, t);
	}
	fputs("</svg>\n", f);
	free(p);
	return fclose(f) ? -errno : 0;
}
