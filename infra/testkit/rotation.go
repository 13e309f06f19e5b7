package testkit

import (
	"context"
	"slices"
	"sync"

	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// RotationService plays the part of Secrets Manager's RotateSecret that moto cannot play without
// Docker: a rotation attaches AWSPENDING to a new, still empty version named by the token, then the
// rotation function's steps run with that token. moto cannot hold an empty version, so Describe
// reports it until createSecret stores the value; everything else is moto's.
type RotationService struct {
	*secretstore.Store
	mu      sync.Mutex
	started map[string]string // secret name -> token of the rotation in progress
}

// NewRotationService wraps store.
func NewRotationService(store *secretstore.Store) *RotationService {
	return &RotationService{Store: store, started: map[string]string{}}
}

// Begin starts a rotation of the named secret with token, as RotateSecret would.
func (s *RotationService) Begin(secretName, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started[secretName] = token
}

// Describe is the store's, with the started rotation's empty AWSPENDING version added.
func (s *RotationService) Describe(ctx context.Context, id string) (secretstore.Description, error) {
	d, err := s.Store.Describe(ctx, id)
	if err != nil {
		return d, err
	}
	s.mu.Lock()
	token := s.started[d.Name]
	s.mu.Unlock()
	if _, stored := d.VersionStages[token]; token != "" && !stored {
		for id, stages := range d.VersionStages {
			d.VersionStages[id] = slices.DeleteFunc(slices.Clone(stages), func(st string) bool { return st == secretstore.StagePending })
		}
		d.VersionStages[token] = []string{secretstore.StagePending}
	}
	return d, nil
}
