/* gemma_civetweb.h - what gemma_civetweb.c adds to civetweb's API. */
#ifndef GEMMA_CIVETWEB_H
#define GEMMA_CIVETWEB_H

#include "civetweb.h"

/* 1 when the peer has closed or reset the connection, without reading any of its data. */
int mg_gemma_client_gone(const struct mg_connection *conn);

#endif
