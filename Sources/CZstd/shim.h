#pragma once
// Minimal shim for libzstd: only the stable API is used (no ZSTD_STATIC_LINKING_ONLY).
#include <zstd.h>
#include <zstd_errors.h>
