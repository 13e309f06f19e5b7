package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ClustersFile is the clusters.json WriteFiles writes: how to reach each cluster. Each entry's url,
// username, password and ca_cert match the layout of a replica-tls/clusters/<name>/api secret.
// It holds passwords: a local development fixture, written 0600.
type ClustersFile struct {
	Clusters []ClusterRecord `json:"clusters"`
}

// ClusterRecord is one cluster in ClustersFile.
type ClusterRecord struct {
	Name           string `json:"name"`
	FQDN           string `json:"fqdn"`
	URL            string `json:"url"`
	Username       string `json:"username"` // admin
	Password       string `json:"password"`
	ViewerUsername string `json:"viewer_username,omitempty"`
	ViewerPassword string `json:"viewer_password,omitempty"`
	CACert         string `json:"ca_cert"` // the API certificate to pin (PEM)
	CAFile         string `json:"ca_file"` // the same, as a file
}

// WriteFiles writes <dir>/<cluster>-api-ca.pem for every cluster and <dir>/clusters.json, and returns
// the path of clusters.json. The simulator must be started (URLs are known only then).
func (s *Sim) WriteFiles(dir string) (string, error) {
	infos := s.Clusters()
	if len(infos) > 0 && infos[0].URL == "" {
		return "", errors.New("write simulator files: not started")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("write simulator files: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("write simulator files: %w", err)
	}
	var f ClustersFile
	for _, c := range infos {
		caFile := filepath.Join(abs, c.Name+"-api-ca.pem")
		if err := os.WriteFile(caFile, []byte(c.APICertPEM), 0o644); err != nil {
			return "", fmt.Errorf("write API CA of %s: %w", c.Name, err)
		}
		f.Clusters = append(f.Clusters, ClusterRecord{
			Name: c.Name, FQDN: c.FQDN, URL: c.URL,
			Username: c.AdminUser, Password: c.AdminPassword,
			ViewerUsername: c.ViewerUser, ViewerPassword: c.ViewerPassword,
			CACert: c.APICertPEM, CAFile: caFile,
		})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode clusters.json: %w", err)
	}
	path := filepath.Join(abs, "clusters.json")
	// Write to a private temporary file and rename, so the passwords are never readable by others,
	// even when clusters.json already existed with wider permissions.
	tmp, err := os.CreateTemp(abs, ".clusters-*.json")
	if err != nil {
		return "", fmt.Errorf("write clusters.json: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write clusters.json: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write clusters.json: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("write clusters.json: %w", err)
	}
	return path, nil
}
