/* The help texts of kc-cluster-ctl and its subcommands. */
#ifndef KCHUB_CTL_USAGE_H
#define KCHUB_CTL_USAGE_H

/* The Redis URL used when neither --redis-url nor KCHUB_REDIS_URL is given. */
#define CTL_DEFAULT_REDIS_URL "redis://127.0.0.1:6379"

extern const char ctl_usage_top[];
extern const char ctl_usage_publish[];
extern const char ctl_usage_retire[];
extern const char ctl_usage_listen[];

#endif
