/*
 * cfgload: the generic YAML walker of the configuration loader; see cfgload.h.
 */
#include "auto-config.h"

#include "cfgload.h"
#include "log.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

_Static_assert(CFG_MAX_KEYS <= sizeof(uint64_t) * CHAR_BIT,
	       "cfgload_section marks the keys it has seen in a uint64_t");

/* ------------------------------------------------------------------ diag */

/* Lists a line even past CFG_MAX_ERRORS (private to the walker). */
#define DIAG_ALWAYS (1u << 8)

static bool diag_listed(char *const *v, size_t n, const char *line)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], line) == 0)
			return true;
	return false;
}

static void diag_vadd(struct cfg_diag *d, unsigned flags, const char *file,
		      const struct cfg_mark *m, const char *fmt, va_list ap)
{
	bool warn = flags & CFG_DIAG_WARN;
	bool full = !warn && !(flags & DIAG_ALWAYS) && d->n >= CFG_MAX_ERRORS;
	char ***v = warn ? &d->warns : &d->msgs;
	size_t *n = warn ? &d->nwarn : &d->n;
	char *msg, *line;

	if (full && !(flags & CFG_DIAG_UNIQUE)) {
		d->more++; /* counted, not even formatted */
		return;
	}
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	line = xasprintf("%s:%u:%u: %s", file, m->line, m->col, msg ? msg : "?");
	free(msg);
	if ((flags & CFG_DIAG_UNIQUE) && diag_listed(*v, *n, line)) {
		free(line); /* said already */
	} else if (full) {
		free(line);
		d->more++;
	} else {
		*v = xrealloc(*v, (*n + 1) * sizeof(**v));
		(*v)[(*n)++] = line;
	}
}

void cfg_diag_add(struct cfg_diag *d, unsigned flags, const char *file, const struct cfg_mark *m,
		  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(d, flags, file, m, fmt, ap);
	va_end(ap);
}

void cfg_error(struct ctx *c, const struct cfg_mark *m, const char *fmt, ...)
{
	va_list ap;

	c->errors++;
	va_start(ap, fmt);
	diag_vadd(c->diag, 0, c->name, m, fmt, ap);
	va_end(ap);
}

void cfg_warn(struct ctx *c, const struct cfg_mark *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(c->diag, CFG_DIAG_WARN, c->name, m, fmt, ap);
	va_end(ap);
}

struct cfg_mark cfgload_node_mark(const yaml_node_t *n)
{
	struct cfg_mark m = { (unsigned)n->start_mark.line + 1,
			      (unsigned)n->start_mark.column + 1 };
	return m;
}

/* ------------------------------------------------------------------ scalars */

static bool scalar_is_null(const yaml_node_t *n)
{
	const char *v = (const char *)n->data.scalar.value;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
	       strcmp(v, "NULL") == 0;
}

static int parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

static int parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!*s)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no",
										  "off" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *out = true, 0;
		if (strcasecmp(s, no[i]) == 0)
			return *out = false, 0;
	}
	return -1;
}

/* "a, b, c" from a NULL-terminated list of names. */
static char *enum_choices(const char *const *enums)
{
	char *s = xstrdup("");

	for (int i = 0; enums[i]; i++) {
		char *t = xasprintf("%s%s%s", s, i ? ", " : "", enums[i]);
		free(s);
		s = t;
	}
	return s;
}

static char *resolve_path(const struct ctx *c, const char *p)
{
	if (p[0] == '/' || !c->dir)
		return xstrdup(p);
	return xasprintf("%s/%s", c->dir, p);
}

/* Converts one scalar text to the key's type at dst.  Returns 0, or -1 with
 * an error already reported at m. */
static int set_scalar(struct ctx *c, const struct cfg_key *k, const char *s,
		      const struct cfg_mark *m, void *dst)
{
	const char *why;

	switch (k->type) {
	case T_STR:
		*(char **)dst = xstrdup(s);
		return 0;
	case T_PATH:
		*(char **)dst = resolve_path(c, s);
		return 0;
	case T_INT: {
		int64_t v;
		if (parse_int(s, &v) < 0 || v < k->min || v > k->max) {
			cfg_error(c, m, "%s: expected an integer from %lld to %lld, got '%s'",
				  k->name, (long long)k->min, (long long)k->max, s);
			return -1;
		}
		*(int64_t *)dst = v;
		return 0;
	}
	case T_DOUBLE: {
		double v;
		if (parse_double(s, &v) < 0 || v < k->dmin || v > k->dmax) {
			cfg_error(c, m, "%s: expected a number from %g to %g, got '%s'", k->name,
				  k->dmin, k->dmax, s);
			return -1;
		}
		*(double *)dst = v;
		return 0;
	}
	case T_BOOL:
		if (parse_bool(s, dst) < 0) {
			cfg_error(c, m, "%s: expected true or false, got '%s'", k->name, s);
			return -1;
		}
		return 0;
	case T_ENUM: {
		for (int i = 0; k->enums[i]; i++)
			if (strcmp(s, k->enums[i]) == 0)
				return *(int *)dst = i, 0;
		char *choices = enum_choices(k->enums);
		cfg_error(c, m, "%s: '%s' is not one of the choices (%s)", k->name, s, choices);
		free(choices);
		return -1;
	}
	case T_HOSTPORT: {
		struct cfg_hostport *hp = dst;
		if (hostport_parse(s, &hp->hp, &why) < 0) {
			cfg_error(c, m, "%s: '%s': %s", k->name, s, why);
			return -1;
		}
		hp->text = xstrdup(s);
		hp->mark = *m;
		return 0;
	}
	default:
		return -1;
	}
}

/* ------------------------------------------------------------------ free */

static void strlist_free(struct cfg_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void value_free(const struct cfg_key *k, void *dst)
{
	switch (k->type) {
	case T_STR:
	case T_PATH:
		free(*(char **)dst);
		*(char **)dst = NULL;
		break;
	case T_HOSTPORT: {
		struct cfg_hostport *hp = dst;
		free(hp->text);
		hostport_clear(&hp->hp);
		hp->text = NULL;
		break;
	}
	case T_STRLIST:
	case T_PATHLIST:
		strlist_free(dst);
		break;
	case T_SECTION:
		cfgload_section_free(k->sub, dst);
		break;
	case T_OPTSECTION: {
		void **p = dst;
		if (*p) {
			cfgload_section_free(k->sub, *p);
			free(*p);
			*p = NULL;
		}
		break;
	}
	case T_LIST:
	case T_MAP: {
		struct cfg_list *l = dst;
		for (size_t i = 0; i < l->n; i++) {
			char *item = (char *)l->v + i * k->sub->size;
			if (k->type == T_MAP)
				free(*(char **)(item + k->sub->name_off));
			cfgload_section_free(k->sub, item);
		}
		free(l->v);
		l->v = NULL;
		l->n = 0;
		break;
	}
	default:
		break;
	}
}

void cfgload_section_free(const struct cfg_section *sec, void *obj)
{
	for (const struct cfg_key *k = sec->keys; k->name; k++)
		value_free(k, (char *)obj + k->off);
}

/* ------------------------------------------------------------------ defaults */

void cfgload_section_defaults(struct ctx *c, const struct cfg_section *sec, void *obj)
{
	static const struct cfg_mark none = { 0, 0 };

	memset(obj, 0, sec->size);
	for (const struct cfg_key *k = sec->keys; k->name; k++) {
		void *dst = (char *)obj + k->off;
		if (k->type == T_SECTION)
			cfgload_section_defaults(c, k->sub, dst);
		else if (k->def && set_scalar(c, k, k->def, &none, dst) < 0)
			fatal("built-in default of %s is invalid", k->name);
	}
}

/* A key given as null takes its default: a section all of its defaults. */
static void value_default(struct ctx *c, const struct cfg_key *k, void *dst)
{
	if (k->type == T_SECTION) {
		value_free(k, dst);
		cfgload_section_defaults(c, k->sub, dst);
	} else if (k->type == T_OPTSECTION || k->def == NULL) {
		value_free(k, dst);
	}
}

/* ------------------------------------------------------------------ walk */

static void load_value(struct ctx *c, const struct cfg_key *k, yaml_node_t *n, void *dst);

bool cfgload_over_budget(const struct ctx *c)
{
	return c->visits > CFG_MAX_VISITS || c->expanded > CFG_MAX_EXPANDED;
}

/* Every walk goes through here, so the budgets see aliased nodes each time. */
yaml_node_t *cfgload_node_at(struct ctx *c, int id)
{
	yaml_node_t *n = yaml_document_get_node(&c->doc, id);

	c->visits++;
	if (n && n->type == YAML_SCALAR_NODE)
		c->expanded += n->data.scalar.length;
	return cfgload_over_budget(c) ? NULL : n;
}

static const char *node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return "a scalar";
	}
}

static void load_strlist(struct ctx *c, const struct cfg_key *k, yaml_node_t *n,
			 struct cfg_strlist *l)
{
	struct cfg_mark m = cfgload_node_mark(n);

	if (n->type == YAML_SCALAR_NODE) {
		/* A lone string counts as a one-element list. */
		l->v = xcalloc(1, sizeof(char *));
		l->n = 1;
		l->v[0] = k->type == T_PATHLIST ? resolve_path(c, (char *)n->data.scalar.value)
						: xstrdup((char *)n->data.scalar.value);
		return;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		cfg_error(c, &m, "%s: expected a list of strings, got %s", k->name, node_kind(n));
		return;
	}
	size_t cap = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	l->v = xcalloc(cap, sizeof(char *));
	for (yaml_node_item_t *it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top && !cfgload_over_budget(c); it++) {
		yaml_node_t *item = cfgload_node_at(c, *it);
		struct cfg_mark im;
		if (!item)
			continue;
		im = cfgload_node_mark(item);
		if (item->type != YAML_SCALAR_NODE || scalar_is_null(item)) {
			cfg_error(c, &im, "%s: list items must be strings", k->name);
			continue;
		}
		const char *s = (char *)item->data.scalar.value;
		l->v[l->n++] = k->type == T_PATHLIST ? resolve_path(c, s) : xstrdup(s);
	}
}

static void load_list(struct ctx *c, const struct cfg_key *k, yaml_node_t *n, struct cfg_list *l)
{
	struct cfg_mark m = cfgload_node_mark(n);

	if (n->type != YAML_SEQUENCE_NODE) {
		cfg_error(c, &m, "%s: expected a list, got %s", k->name, node_kind(n));
		return;
	}
	size_t cap = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	l->v = xcalloc(cap, k->sub->size);
	for (yaml_node_item_t *it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top && !cfgload_over_budget(c); it++) {
		yaml_node_t *item = cfgload_node_at(c, *it);
		void *obj = (char *)l->v + l->n * k->sub->size;
		if (!item)
			continue;
		cfgload_section_defaults(c, k->sub, obj);
		l->n++;
		cfgload_section(c, item, k->sub, obj);
	}
}

/* A section whose keys are loaded: its derived defaults, then its check. */
static void section_done(struct ctx *c, const struct cfg_section *sec, void *obj)
{
	if (sec->fill)
		sec->fill(obj);
	if (sec->check)
		sec->check(c, obj);
}

static const struct cfg_key *find_key(const struct cfg_section *sec, const char *name)
{
	for (const struct cfg_key *k = sec->keys; k->name; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

static bool map_has_name(const struct cfg_section *sub, const struct cfg_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(*(char **)((char *)l->v + i * sub->size + sub->name_off), name) == 0)
			return true;
	return false;
}

/* A mapping of names to items: each value is loaded as the item's section
 * (whose mark is that of the value), or into its value_key (the mark is
 * that of the name). */
static void load_map(struct ctx *c, const struct cfg_key *k, yaml_node_t *n, struct cfg_list *l)
{
	const struct cfg_section *sub = k->sub;
	struct cfg_mark m = cfgload_node_mark(n);

	if (n->type != YAML_MAPPING_NODE) {
		cfg_error(c, &m, "%s: expected a mapping of names, got %s", k->name, node_kind(n));
		return;
	}
	l->v = xcalloc((size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start),
		       sub->size);
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
	     p < n->data.mapping.pairs.top && !cfgload_over_budget(c); p++) {
		yaml_node_t *kn = cfgload_node_at(c, p->key), *vn = cfgload_node_at(c, p->value);
		char *obj = (char *)l->v + l->n * sub->size;
		if (!kn || !vn)
			continue;
		m = cfgload_node_mark(kn);
		if (kn->type != YAML_SCALAR_NODE || scalar_is_null(kn)) {
			cfg_error(c, &m, "%s: names must be strings", k->name);
			continue;
		}
		const char *name = (const char *)kn->data.scalar.value;
		if (map_has_name(sub, l, name)) {
			cfg_error(c, &m, "%s: '%s' is given twice", k->name, name);
			continue;
		}
		cfgload_section_defaults(c, sub, obj);
		*(char **)(obj + sub->name_off) = xstrdup(name);
		l->n++;
		if (!sub->value_key) {
			cfgload_section(c, vn, sub, obj);
			continue;
		}
		*(struct cfg_mark *)obj = m;
		load_value(c, sub->value_key, vn, obj + sub->value_key->off);
		section_done(c, sub, obj);
	}
}

static yaml_node_t *map_get(struct ctx *c, yaml_node_t *map, const char *name)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top && !cfgload_over_budget(c); p++) {
		yaml_node_t *kn = cfgload_node_at(c, p->key);
		if (kn && kn->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)kn->data.scalar.value, name) == 0)
			return cfgload_node_at(c, p->value);
	}
	return NULL;
}

/* The key table for a section: k->sub, or for a section with variants the
 * table its "kind" names (the default kind when absent).  NULL, with the
 * problem reported, when kind is missing without a default or unknown. */
static const struct cfg_section *section_for(struct ctx *c, const struct cfg_key *k,
					     yaml_node_t *map)
{
	const struct cfg_key *kind;
	struct cfg_mark m = cfgload_node_mark(map);
	const char *v;
	yaml_node_t *vn;

	if (!k->variants || map->type != YAML_MAPPING_NODE)
		return k->sub;
	kind = find_key(k->sub, "kind");
	v = kind->def;
	vn = map_get(c, map, "kind");
	if (vn && vn->type != YAML_SCALAR_NODE)
		return k->variants[0]; /* cfgload_section reports it */
	if (vn && !scalar_is_null(vn)) {
		v = (const char *)vn->data.scalar.value;
		m = cfgload_node_mark(vn);
	}
	if (!v) {
		cfg_error(c, &m, "%s: missing required key 'kind'", k->name);
		return NULL;
	}
	for (int i = 0; kind->enums[i]; i++)
		if (strcmp(v, kind->enums[i]) == 0)
			return k->variants[i];
	char *choices = enum_choices(kind->enums);
	cfg_error(c, &m, "kind: '%s' is not one of the choices (%s)", v, choices);
	free(choices);
	return NULL;
}

static void load_value(struct ctx *c, const struct cfg_key *k, yaml_node_t *n, void *dst)
{
	const struct cfg_section *sec;

	struct cfg_mark m = cfgload_node_mark(n);

	if (cfgload_over_budget(c))
		return;
	switch (k->type) {
	case T_SECTION:
		if ((sec = section_for(c, k, n)))
			cfgload_section(c, n, sec, dst);
		return;
	case T_OPTSECTION: {
		void *obj = xmalloc(k->sub->size);
		cfgload_section_defaults(c, k->sub, obj);
		*(void **)dst = obj;
		if ((sec = section_for(c, k, n)))
			cfgload_section(c, n, sec, obj);
		return;
	}
	case T_LIST:
		load_list(c, k, n, dst);
		return;
	case T_MAP:
		load_map(c, k, n, dst);
		return;
	case T_STRLIST:
	case T_PATHLIST:
		load_strlist(c, k, n, dst);
		return;
	default:
		break;
	}
	if (n->type != YAML_SCALAR_NODE) {
		cfg_error(c, &m, "%s: expected a single value, got %s", k->name, node_kind(n));
		return;
	}
	value_free(k, dst); /* drop the default */
	(void)set_scalar(c, k, (char *)n->data.scalar.value, &m, dst);
}

void cfgload_section(struct ctx *c, yaml_node_t *map, const struct cfg_section *sec, void *obj)
{
	struct cfg_mark m = cfgload_node_mark(map);
	uint64_t seen = 0; /* bit i: keys[i] was given */

	*(struct cfg_mark *)obj = m;
	if (map->type != YAML_MAPPING_NODE) {
		cfg_error(c, &m, "%s: expected a mapping of keys, got %s", sec->name,
			  node_kind(map));
		return;
	}
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top && !cfgload_over_budget(c); p++) {
		yaml_node_t *kn = cfgload_node_at(c, p->key), *vn = cfgload_node_at(c, p->value);
		const struct cfg_key *k;
		struct cfg_mark km;

		if (!kn || !vn)
			continue;
		km = cfgload_node_mark(kn);
		if (kn->type != YAML_SCALAR_NODE) {
			cfg_error(c, &km, "%s: keys must be plain words", sec->name);
			continue;
		}
		const char *name = (const char *)kn->data.scalar.value;
		k = find_key(sec, name);
		if (!k) {
			cfg_error(c, &km, "unknown key '%s' in %s", name, sec->name);
			continue;
		}
		uint64_t bit = 1ull << (k - sec->keys);
		if (seen & bit) {
			cfg_error(c, &km, "key '%s' is given twice", name);
			continue;
		}
		seen |= bit;
		if (k->seen_off > 0)
			*(bool *)((char *)obj + k->seen_off) = true;
		if (scalar_is_null(vn)) {
			if (k->flags & F_REQUIRED)
				cfg_error(c, &km, "%s: a value is required", name);
			else
				value_default(c, k, (char *)obj + k->off);
			continue;
		}
		load_value(c, k, vn, (char *)obj + k->off);
		if (k->ignored)
			cfg_warn(c, &km, "%s is ignored: %s", name, k->ignored);
	}
	if (cfgload_over_budget(c))
		return; /* reported once, at the end */
	for (const struct cfg_key *k = sec->keys; k->name; k++)
		if ((k->flags & F_REQUIRED) && !(seen & (1ull << (k - sec->keys))))
			cfg_error(c, &m, "%s: missing required key '%s'", sec->name, k->name);
	section_done(c, sec, obj);
}

/* ------------------------------------------------------------------ load */

static void report_yaml_error(struct ctx *c, const yaml_parser_t *p)
{
	struct cfg_mark m = { (unsigned)p->problem_mark.line + 1,
			      (unsigned)p->problem_mark.column + 1 };

	if (p->error == YAML_READER_ERROR)
		m.line = m.col = 1;
	cfg_error(c, &m, "YAML syntax error: %s%s%s", p->problem ? p->problem : "unknown",
		  p->context ? " " : "", p->context ? p->context : "");
}

/* Listed even past CFG_MAX_ERRORS: it explains why the walk stopped. */
static void report_over_budget(struct ctx *c)
{
	struct cfg_mark m = { 1, 1 };

	cfg_diag_add(c->diag, DIAG_ALWAYS, c->name, &m,
		     "the document is too large once aliases are expanded "
		     "(more than %u nodes or %u MiB of text); the walk stopped there",
		     CFG_MAX_VISITS, CFG_MAX_EXPANDED >> 20);
	c->errors++;
}

/* A second document in the same stream is almost certainly a mistake. */
static void check_single_document(struct ctx *c)
{
	yaml_document_t extra;

	if (!yaml_parser_load(&c->parser, &extra))
		return;
	yaml_node_t *r = yaml_document_get_root_node(&extra);
	if (r) {
		struct cfg_mark m = cfgload_node_mark(r);
		cfg_error(c, &m, "only one YAML document is allowed");
	}
	yaml_document_delete(&extra);
}

int cfgload_begin(struct ctx *c, const char *text, size_t len)
{
	if (!yaml_parser_initialize(&c->parser))
		fatal("libyaml: cannot initialize parser");
	yaml_parser_set_input_string(&c->parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&c->parser, &c->doc)) {
		report_yaml_error(c, &c->parser);
		return -1;
	}
	c->have_doc = true;
	return 0;
}

yaml_node_t *cfgload_root(struct ctx *c)
{
	yaml_node_t *root = yaml_document_get_root_node(&c->doc);

	if (!root) {
		struct cfg_mark m = { 1, 1 };
		cfg_error(c, &m, "the configuration is empty");
	}
	return root;
}

void cfgload_end(struct ctx *c)
{
	if (cfgload_over_budget(c))
		report_over_budget(c);
	if (c->have_doc && !c->errors)
		check_single_document(c);
	if (c->have_doc)
		yaml_document_delete(&c->doc);
	yaml_parser_delete(&c->parser);
}

/* ------------------------------------------------------------------ introspection */

static bool section_equal(const struct cfg_section *sec, const void *a, const void *b);

static bool str_equal(const char *x, const char *y)
{
	return (!x && !y) || (x && y && strcmp(x, y) == 0);
}

static bool strlist_equal(const struct cfg_strlist *x, const struct cfg_strlist *y)
{
	if (x->n != y->n)
		return false;
	for (size_t i = 0; i < x->n; i++)
		if (strcmp(x->v[i], y->v[i]) != 0)
			return false;
	return true;
}

/* T_LIST and T_MAP: the same items (and names) in the same order. */
static bool list_equal(const struct cfg_key *k, const struct cfg_list *x, const struct cfg_list *y)
{
	const struct cfg_section *sub = k->sub;

	if (x->n != y->n)
		return false;
	for (size_t i = 0; i < x->n; i++) {
		const char *p = (const char *)x->v + i * sub->size;
		const char *q = (const char *)y->v + i * sub->size;
		if (k->type == T_MAP && !str_equal(*(char *const *)(p + sub->name_off),
						   *(char *const *)(q + sub->name_off)))
			return false;
		if (!section_equal(sub, p, q))
			return false;
	}
	return true;
}

/* Whether key k holds the same value at a and b; marks do not count.  No
 * default case: the compiler names a type added without its comparison. */
static bool value_equal(const struct cfg_key *k, const void *a, const void *b)
{
	switch (k->type) {
	case T_STR:
	case T_PATH:
		return str_equal(*(char *const *)a, *(char *const *)b);
	case T_INT:
		return *(const int64_t *)a == *(const int64_t *)b;
	case T_DOUBLE:
		return *(const double *)a == *(const double *)b;
	case T_BOOL:
		return *(const bool *)a == *(const bool *)b;
	case T_ENUM:
		return *(const int *)a == *(const int *)b;
	case T_HOSTPORT:
		return str_equal(((const struct cfg_hostport *)a)->text,
				 ((const struct cfg_hostport *)b)->text);
	case T_STRLIST:
	case T_PATHLIST:
		return strlist_equal(a, b);
	case T_SECTION:
		return section_equal(k->sub, a, b);
	case T_OPTSECTION: {
		const void *x = *(const void *const *)a, *y = *(const void *const *)b;
		return (!x && !y) || (x && y && section_equal(k->sub, x, y));
	}
	case T_LIST:
	case T_MAP:
		return list_equal(k, a, b);
	}
	return false;
}

static bool section_equal(const struct cfg_section *sec, const void *a, const void *b)
{
	for (const struct cfg_key *k = sec->keys; k->name; k++)
		if (!value_equal(k, (const char *)a + k->off, (const char *)b + k->off))
			return false;
	return true;
}

/* An embedded section is looked into, key by key, unless it is F_STATIC as
 * a whole; any other F_STATIC key is reported when its value differs. */
void cfgload_changed_static(const struct cfg_section *sec, const void *a, const void *b,
			    const char *prefix, void (*report)(const char *, void *), void *arg)
{
	for (const struct cfg_key *k = sec->keys; k->name; k++) {
		const void *x = (const char *)a + k->off, *y = (const char *)b + k->off;
		if (k->type == T_SECTION && !(k->flags & F_STATIC)) {
			char *p = xasprintf("%s%s.", prefix, k->name);
			cfgload_changed_static(k->sub, x, y, p, report, arg);
			free(p);
		} else if ((k->flags & F_STATIC) && !value_equal(k, x, y)) {
			char *p = xasprintf("%s%s", prefix, k->name);
			report(p, arg);
			free(p);
		}
	}
}

/* Lists are KEY[], the items of a mapping of names KEY.<name>. */
void cfgload_dump_keys(FILE *out, const struct cfg_section *sec, const char *prefix)
{
	for (const struct cfg_key *k = sec->keys; k->name; k++) {
		const char *list = k->type == T_LIST ? "[]" : "";
		const struct cfg_section *sub = k->sub;
		char *p;

		fprintf(out, "%s%s%s\n", prefix, k->name, list);
		if (!sub)
			continue;
		if (k->type != T_MAP)
			p = xasprintf("%s%s%s.", prefix, k->name, list);
		else if (!sub->value_key)
			p = xasprintf("%s%s.<name>.", prefix, k->name);
		else
			p = xasprintf("%s%s.<name>%s.", prefix, k->name,
				      sub->value_key->type == T_LIST ? "[]" : "");
		if (!sub->value_key || sub->value_key->sub)
			cfgload_dump_keys(out, sub->value_key ? sub->value_key->sub : sub, p);
		free(p);
	}
}
