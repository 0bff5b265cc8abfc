/*
 * safetensors_internal.h: what safetensors.c (reading, loading) and
 * safetensors_write.c (writing) share. Not installed.
 */
#ifndef LIBTENSOR_NN_SAFETENSORS_INTERNAL_H
#define LIBTENSOR_NN_SAFETENSORS_INTERNAL_H

#include "checkpoint.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Record "safetensors: SOURCE: <message>" (SOURCE NULL: "<memory>"). */
__attribute__((format(printf, 2, 3))) void lt__st_error(const char *source, const char *fmt, ...);

/* The format's name of a dtype ("F32", ...), NULL if it has none. */
const char *lt__st_dtype_name(lt_dtype dt);
bool lt__st_host_is_le(void);
/* Reverse the byte order of n elements of es bytes (big-endian hosts). */
void lt__st_swap_bytes(uint8_t *p, size_t n, size_t es);
/* The first name that occurs twice among n, or NULL (*oom set if the check
 * could not allocate). names[i] non-NULL. */
const char *lt__st_find_duplicate(int n, const char *const *names, bool *oom);

/* A growing text buffer over lt_alloc; `oom` sticks once an append fails. */
typedef struct lt__sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} lt__sbuf;

void lt__sb_put(lt__sbuf *b, const char *s, size_t n);
void lt__sb_puts(lt__sbuf *b, const char *s);
void lt__sb_u64(lt__sbuf *b, uint64_t v);
/* s as a JSON string literal, quotes included. */
void lt__sb_json_str(lt__sbuf *b, const char *s);
void lt__sb_free(lt__sbuf *b);

#endif
