/* libiketcp: RFC 9329 TCP encapsulation of IKE and ESP. One include for all. */
#ifndef IKETCP_IKETCP_H
#define IKETCP_IKETCP_H

#include "iketcp/cursor.h"
#include "iketcp/deframer.h"
#include "iketcp/dgram.h"
#include "iketcp/err.h"
#include "iketcp/frame.h"
#include "iketcp/ike.h"
#include "iketcp/mem.h"
#include "iketcp/proxy.h"
#include "iketcp/proxyproto.h"
#include "iketcp/sendq.h"
#include "iketcp/tls.h"
#include "iketcp/transport.h"

#define IKETCP_VERSION_STRING "0.1.0"

#endif
