/* The systemd notification protocol (sd_notify(3)) without libsystemd: one datagram to the
 * socket in $NOTIFY_SOCKET ("@name" for the abstract namespace). Under systemd with Type=notify
 * the daemon says READY=1 once it serves, WATCHDOG=1 while its loop turns, STOPPING=1 at the end;
 * anywhere else these are no-ops. */
#ifndef SLUICE_BASE_SDNOTIFY_H
#define SLUICE_BASE_SDNOTIFY_H

#include "base/util.h"

/* Sends msg ("READY=1\nSTATUS=..."); 0 when sent, 1 without $NOTIFY_SOCKET, -errno on failure. */
int sd_notify_send(const char *msg);
/* How often to send WATCHDOG=1 (half of $WATCHDOG_USEC), or 0 when no watchdog is asked for. */
usec_t sd_watchdog_interval(void);

#endif
