package simulator

import (
	"strconv"
	"time"
)

// renderDB is the bdb object the API returns for d with configuration cfg (d.cfg, or the would-be
// configuration of a dry run). Like a real cluster it carries many fields a client does not use,
// authentication_admin_pass included. Caller holds s.mu.
func (s *Sim) renderDB(d *db, cfg DBConfig, now time.Time) map[string]any {
	status := "active"
	if d.running != nil {
		status = "active-change-pending"
	}
	sources := make([]map[string]any, 0, len(cfg.ReplicaSources))
	for _, r := range cfg.ReplicaSources {
		m := sourceJSON(r)
		// A link not yet in effect (the action still runs, or a dry run) is being set up.
		st, lag, lastErr, updated := "syncing", int64(0), "", now
		if l := d.links[r.UID]; l != nil {
			updated = l.lastUpdate
			// With a LinkOwner only its reports count: a link it has not reported on yet is being set up.
			if l.reported != nil || !s.dpLinks {
				st, lag, lastErr = l.status(now, s.opts.SyncDelay)
			}
		}
		m["status"], m["lag"], m["last_error"] = st, lag, lastErr
		m["last_update"] = updated.UTC().Format(time.RFC3339)
		m["rdb_size"], m["rdb_transferred"] = 0, 0
		sources = append(sources, m)
	}
	replicaSync := "disabled"
	if len(cfg.ReplicaSources) > 0 {
		replicaSync = "enabled"
	}
	m := map[string]any{
		"uid":                                 cfg.UID,
		"name":                                cfg.Name,
		"type":                                "redis",
		"version":                             "7.4.0",
		"port":                                cfg.Port,
		"memory_size":                         1 << 30,
		"shards_count":                        1,
		"replication":                         false,
		"data_persistence":                    "disabled",
		"eviction_policy":                     "volatile-lru",
		"oss_cluster":                         false,
		"crdt":                                d.crdtGUID != "",
		"crdt_guid":                           d.crdtGUID,
		"status":                              status,
		"tls_mode":                            cfg.TLSMode,
		"ssl":                                 cfg.TLSMode == "enabled",
		"enforce_client_authentication":       cfg.EnforceClientAuthentication,
		"authentication_ssl_client_certs":     certObjects(cfg.AuthenticationSSLClientCerts),
		"authentication_ssl_crdt_certs":       certObjects(cfg.AuthenticationSSLCRDTCerts),
		"client_cert_subject_validation_type": "disabled",
		"authorized_subjects":                 []any{},
		"mtls_allow_outdated_certs":           cfg.MTLSAllowOutdatedCerts,
		"mtls_allow_weak_hashing":             false,
		"authentication_admin_pass":           cfg.AuthenticationAdminPass,
		"replica_sources":                     sources,
		"replica_sync":                        replicaSync,
		"sync":                                "disabled",
		"sync_sources":                        []any{},
		"endpoints": []map[string]any{{
			"uid":          d.endpointUID(),
			"dns_name":     d.dnsName,
			"port":         cfg.Port,
			"addr":         []string{"127.0.0.1"},
			"addr_type":    "external",
			"proxy_policy": "single",
		}},
		"created_time":      d.created.UTC().Format(time.RFC3339),
		"last_changed_time": d.lastChanged.UTC().Format(time.RFC3339),
	}
	if d.running != nil {
		m["action_uid"] = d.running.uid
	}
	return m
}

func certObjects(pems []string) []map[string]string {
	out := make([]map[string]string, 0, len(pems))
	for _, p := range pems {
		out = append(out, map[string]string{"client_cert": p})
	}
	return out
}

// filterFields keeps only the requested keys; nil fields keeps everything.
func filterFields(m map[string]any, fields []string) map[string]any {
	if fields == nil {
		return m
	}
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		if v, ok := m[f]; ok {
			out[f] = v
		}
	}
	return out
}

func renderAction(a *action, now time.Time) map[string]any {
	status := "active"
	if a.done {
		status = "completed"
	}
	m := map[string]any{
		"action_uid":    a.uid,
		"name":          "SMUpdateBDB",
		"status":        status,
		"progress":      a.progress(now),
		"object_name":   "bdb:" + strconv.Itoa(a.dbUID),
		"creation_time": a.started.Unix(),
	}
	if a.done && a.failure != "" {
		m["status"] = "failed"
		const text = "the database change could not be applied (failure injected by the simulator)"
		switch a.failure {
		case ActionFailError:
			m["error"] = text
		case ActionFailErrorCode:
			m["error_code"], m["error_message"] = "internal_error", text
		case ActionFailAdditionalInfo:
			m["additional_info"] = map[string]any{"error": text, "object_type": "bdb", "object_uid": strconv.Itoa(a.dbUID)}
		}
	}
	return m
}
