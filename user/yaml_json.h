/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * YAML to cJSON, so that the spec validator walks one tree whatever format a
 * user wrote. Only what Kubernetes manifests use is supported: block and flow
 * mappings and sequences, plain and quoted scalars resolved by the YAML 1.2
 * core schema. Anchors, aliases, custom tags and complex keys are rejected
 * with a message rather than guessed at.
 */
#ifndef SLUICE_YAML_JSON_H
#define SLUICE_YAML_JSON_H

#include <stddef.h>
#include <cjson/cJSON.h>

/**
 * yaml_to_cjson() - convert the YAML document in @buf into a cJSON tree.
 * @buf, @len: the text; it need not be NUL-terminated.
 * @out: on success, the tree (free it with cJSON_Delete()).
 * @err, @errlen: on failure, a one-line message starting with the line and
 *                column where the problem is.
 *
 * One document per file: a leading "---" is fine, and so is an empty document
 * after the first, but a second document with content is an error, because a
 * file holding two Canaries would otherwise have one of them silently dropped.
 *
 * Scalars: quoted, literal and folded ones are strings; plain ones are null
 * ("", ~, null), booleans (true/false in the three core-schema spellings),
 * integers (decimal, 0o octal, 0x hex), floats (including .inf and .nan) or,
 * failing all those, strings. YAML 1.1's yes/no/on/off are strings. Mapping
 * keys are always strings.
 *
 * Return: 0, -EINVAL for a document that cannot be converted, -ENOMEM.
 */
int yaml_to_cjson(const char *buf, size_t len, cJSON **out, char *err, size_t errlen);

#endif /* SLUICE_YAML_JSON_H */
