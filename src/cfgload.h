/*
 * cfgload: the generic YAML walker behind the configuration loader.
 *
 * A schema is a tree of key tables (struct cfg_section, each an array of
 * struct cfg_key ended by an empty entry).  The walker fills a section's
 * struct from a YAML mapping: defaults, types, ranges, required and
 * duplicate keys, and every problem as "FILE:LINE:COL: message" in the
 * caller's cfg_diag.  Aliases may not multiply its work: node and byte
 * budgets stop the walk.  config.c (this version's schema) and
 * config_compat.c (the linkerd-tcp 0.1.x schema) are its users; nothing
 * else includes this header but the config unit test.
 *
 * Ownership: a struct ctx lives for one load, on the loading thread's
 * stack, and owns the libyaml parser and document between cfgload_begin
 * and cfgload_end.  A filled section owns its strings, lists and optional
 * sections until cfgload_section_free.  Loads run on the main thread (at
 * startup and on reload); nothing here is shared between loads.
 */
#ifndef LTCP_CFGLOAD_H
#define LTCP_CFGLOAD_H

#include "config.h"
#include "util.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <yaml.h>

/* Aliases may not multiply work ("billion laughs"): every node visited and
 * every scalar byte read through them counts against these budgets. */
#define CFG_MAX_VISITS   200000u
#define CFG_MAX_EXPANDED (8u << 20)
#define MS_MAX           ((int64_t)INT_MAX)
#define SECS_MAX         ((int64_t)INT_MAX / 1000)

enum cfg_type {
	T_STR,
	T_PATH, /* string, resolved against the config file's directory */
	T_INT,
	T_DOUBLE,
	T_BOOL,
	T_ENUM,
	T_HOSTPORT,
	T_STRLIST,
	T_PATHLIST,
	T_SECTION,    /* embedded struct */
	T_OPTSECTION, /* pointer to a struct, NULL when absent */
	T_LIST,       /* struct cfg_list of sections */
	T_MAP,        /* struct cfg_list of sections, one per name of a mapping */
};

enum {
	F_REQUIRED = 1u << 0,
	F_STATIC = 1u << 1, /* takes effect only on restart */
};

struct cfg_section;

struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t off;
	const char *def;
	int64_t min, max;
	double dmin, dmax;
	const char *const *enums;
	const struct cfg_section *sub;
	unsigned flags;
	ptrdiff_t seen_off; /* >0: offset of a bool set when the key is given */
	/* T_SECTION/T_OPTSECTION whose key table depends on its "kind": sub is
	 * the union of all keys (defaults, free, dump); variants[i] is the table
	 * for the i-th value of sub's "kind" enum. */
	const struct cfg_section *const *variants;
	const char *ignored; /* accepted, then ignored with this warning */
};

struct ctx;

struct cfg_section {
	const char *name;
	const struct cfg_key *keys;
	size_t size;
	void (*check)(struct ctx *c, const void *obj);
	/* T_MAP items: where the item's name goes (a char *), and the key that
	 * takes the value when it is not a mapping of keys (NULL: it is). */
	size_t name_off;
	const struct cfg_key *value_key;
	/* Defaults that depend on other values (or on the item's place): set
	 * once the keys are loaded, just before check, which only checks. */
	void (*fill)(void *obj);
};

/* The walker marks the keys of a section it has seen in a uint64_t: no
 * table may have more keys.  CFG_KEYS_FIT(table) follows every table. */
#define CFG_MAX_KEYS 64
#define CFG_KEYS_FIT(table)                                                                        \
	_Static_assert(ARRAY_SIZE(table) - 1 <= CFG_MAX_KEYS,                                      \
		       #table " has more keys than CFG_MAX_KEYS")

/* A key named after its field, and one named otherwise (the 0.1.x schema's
 * camelCase); INT/NINT are integer keys with a default and a range. */
#define KEY(S, F, T, ...)                                                                          \
	{                                                                                          \
		.name = #F, .type = T, .off = offsetof(S, F), __VA_ARGS__                          \
	}
#define INT(S, F, D, LO, HI, ...) KEY(S, F, T_INT, .def = D, .min = LO, .max = HI, __VA_ARGS__)
#define NKEY(S, F, N, T, ...)                                                                      \
	{                                                                                          \
		.name = N, .type = T, .off = offsetof(S, F), __VA_ARGS__                           \
	}
#define NINT(S, F, N, D, LO, HI, ...)                                                              \
	NKEY(S, F, N, T_INT, .def = D, .min = LO, .max = HI, __VA_ARGS__)

struct ctx {
	const char *name; /* the file, as messages name it */
	const char *dir;  /* T_PATH values resolve against it; NULL: kept as given */
	yaml_parser_t parser;
	yaml_document_t doc;
	bool have_doc;
	struct cfg_diag *diag;
	unsigned visits;
	size_t expanded; /* scalar bytes visited */
	unsigned errors;
};

/* An error (counted in c->errors, listed by cfg_diag_add) or a warning at m. */
PRINTF(3, 4) void cfg_error(struct ctx *c, const struct cfg_mark *m, const char *fmt, ...);
PRINTF(3, 4) void cfg_warn(struct ctx *c, const struct cfg_mark *m, const char *fmt, ...);

/* Parses text into c->doc: 0, or -1 with the syntax error reported. */
int cfgload_begin(struct ctx *c, const char *text, size_t len);
/* The document's root node; NULL, reported, when the document is empty. */
yaml_node_t *cfgload_root(struct ctx *c);
/* Reports a walk stopped by the budgets, or a second document when the
 * first had no error; then frees the document and the parser. */
void cfgload_end(struct ctx *c);

struct cfg_mark cfgload_node_mark(const yaml_node_t *n);
/* Whether a budget ran out: the walk stops, and cfgload_end reports it. */
bool cfgload_over_budget(const struct ctx *c);
/* Node id of c->doc, counted against the budgets; NULL once over budget. */
yaml_node_t *cfgload_node_at(struct ctx *c, int id);

/* Zeroes obj and sets every key's default (a fatal error when a built-in
 * default does not parse). */
void cfgload_section_defaults(struct ctx *c, const struct cfg_section *sec, void *obj);
/* Loads the mapping map into obj (whose defaults are set), then runs the
 * section's fill and check. */
void cfgload_section(struct ctx *c, yaml_node_t *map, const struct cfg_section *sec, void *obj);
/* Frees what the keys of obj own; obj itself stays the caller's. */
void cfgload_section_free(const struct cfg_section *sec, void *obj);

/* Reports, as prefix + dotted path, every F_STATIC key whose value differs
 * between a and b (any type; marks do not count), looking into embedded
 * sections that are not F_STATIC as a whole. */
void cfgload_changed_static(const struct cfg_section *sec, const void *a, const void *b,
			    const char *prefix, void (*report)(const char *key, void *arg),
			    void *arg);
/* Prints every key of sec as a dotted path, one per line. */
void cfgload_dump_keys(FILE *out, const struct cfg_section *sec, const char *prefix);

#endif
