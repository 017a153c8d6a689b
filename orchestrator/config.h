/* Configuration: one table row per option (name, default, meaning), read in this order, later
 * sources winning: built-in default, $SLUICE_HOME/sluice.cfg (INI: [section] key = value), the
 * environment variable SLUICE__SECTION__KEY, then command-line flags applied by the caller. */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "base/util.h"

struct config {
	char *home;                 /* state directory (absolute) */
	char *dags_folder;          /* DAG folder (absolute) */
	int parallelism;            /* tries each executor runs at once */
	usec_t kill_grace;          /* SIGTERM -> SIGKILL grace */
	size_t dag_memory_limit;    /* bytes per DAG file */
	unsigned long long dag_instruction_limit;
	usec_t dag_time_limit;
	char *task_env_passthrough; /* extra variables of the daemon's environment tasks get */
	size_t max_log_size;        /* bytes a try may write to its log; 0 = no cap */
	char *db_synchronous;       /* "normal" or "full" */
	char *bind;                 /* web server address */
	int port;
	char *allowed_hosts;        /* names the API may be reached by (besides IPs, localhost) */
	bool metrics_public;        /* /metrics without credentials */
	bool expose_config;         /* GET /api/v1/config for admins */
	int max_connections;        /* open at once, in all */
	int max_connections_per_address;
	usec_t idle_timeout;        /* an idle connection is closed after this */
	int max_event_streams;      /* SSE streams open at once */
	usec_t write_timeout;       /* an API change waits this long for the scheduler */
	usec_t session_lifetime;    /* a web UI login lasts this long */
	char *ssh_config_file;      /* ssh -F; "" = the user's own ssh configuration */
	int ssh_slots;              /* tries one SSH host runs at once */
	char *ssh_remote_dir;       /* the tries' files on the remote hosts */
	usec_t ssh_connect_timeout;
	struct config_host {        /* [ssh.host.NAME] slots = N */
		char *name;
		int slots;
		int line;           /* where it was set in sluice.cfg (0: elsewhere) */
	} *ssh_hosts;
	size_t n_ssh_hosts;
	char *k8s_kubeconfig;       /* the k8s executor's cluster: "" = $KUBECONFIG, ~/.kube/config, in-cluster */
	char *k8s_context, *k8s_namespace, *k8s_api_server, *k8s_token_file, *k8s_ca_file;
	int k8s_qps, k8s_burst;     /* its client-side rate limit */
	usec_t k8s_pending_timeout; /* a pod Pending longer fails its try */
	usec_t k8s_ttl_after_finished;
	usec_t slurm_poll_interval;  /* one squeue (and sacct/scontrol) per interval */
	int slurm_max_submit;        /* sbatch calls per second */
	char *slurm_work_dir;        /* shared storage of the tries' files; "" = under the home */
	char *slurm_bin_dir;         /* the Slurm commands' folder; "" = PATH */
	char *slurm_accounting;      /* "auto" or "no" */
	usec_t slurm_command_timeout;
	const char **sources;       /* where each option's value came from (config.c's table order) */
};

/* Loads the configuration for home (absolute). Returns 0, or -EINVAL with *err set when a
 * value is invalid (the message names the source and the option). */
int config_load(struct config *cfg, const char *home, char **err);
/* Sets an option by "section.key" from a string (used for flags too). */
int config_set(struct config *cfg, const char *name, const char *value, char **err);
void config_free(struct config *cfg);
/* Calls fn for every option, in table order, with its "section.key" name, value as text and
 * source ("default", "sluice.cfg", "environment", "flag"). Returns how many. */
int config_each(const struct config *cfg, void (*fn)(void *arg, const char *name, const char *value, const char *source),
		void *arg);
/* Every option and per-host setting as "section.key=value" (what the executors are configured
 * with: the ssh backend takes the ssh.* ones). NULL-terminated; free with config_free_settings(). */
char **config_settings(const struct config *cfg);
void config_free_settings(char **v);
/* Prints every option with its value and source as INI text. */
void config_print(const struct config *cfg, bool json);

#endif
