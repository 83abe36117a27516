#pragma once
// Minimal shim for libarchive. Only what Swift cannot import directly lives here.
#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#if defined(__APPLE__)
#include <xlocale.h>
#endif

// LC_CTYPE_MASK is a macro expression the importer does not see on every libc.
static inline int CArchive_LC_CTYPE_MASK(void) { return LC_CTYPE_MASK; }
// LC_GLOBAL_LOCALE is a cast macro ((locale_t)-1) the importer does not see.
static inline locale_t CArchive_LC_GLOBAL_LOCALE(void) { return LC_GLOBAL_LOCALE; }
