package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/flotilla-edge/flotilla/api"
)

// ensureRevision records the template of revision name as a
// ControllerRevision owned by the set (so it goes with the set), and
// prunes revisions no pod uses beyond revisionHistoryLimit.
func (c *statefulSetController) ensureRevision(ctx context.Context, set *api.StatefulSet, name string) error {
	var owned []*api.ControllerRevision
	for _, o := range c.revs.List(func(o api.Object) bool {
		return o.GetMeta().Namespace == set.Namespace && api.IsControlledBy(o.GetMeta(), set.UID)
	}) {
		owned = append(owned, o.(*api.ControllerRevision))
	}
	var top int64
	exists := false
	for _, r := range owned {
		top = max(top, r.Revision)
		exists = exists || r.Name == name
	}
	if !exists {
		rev := &api.ControllerRevision{
			ObjectMeta: api.ObjectMeta{
				Name: name, Namespace: set.Namespace, Labels: copyMap(set.Spec.Template.Labels),
				OwnerReferences: []api.OwnerReference{{APIVersion: api.Version, Kind: "StatefulSet", Name: set.Name, UID: set.UID, Controller: true}},
			},
			Template: set.Spec.Template,
			Revision: top + 1,
		}
		created, err := c.m.st.Create(ctx, rev)
		if err != nil && !errors.Is(err, api.ErrAlreadyExists) {
			return fmt.Errorf("record revision %s/%s: %w", set.Namespace, name, err)
		}
		if err == nil {
			c.revs.Assume(created)
			owned = append(owned, created.(*api.ControllerRevision))
		}
	}
	return c.pruneRevisions(ctx, set, owned, name)
}

func (c *statefulSetController) pruneRevisions(ctx context.Context, set *api.StatefulSet, owned []*api.ControllerRevision, updateRev string) error {
	limit := 10
	if set.Spec.RevisionHistoryLimit != nil {
		limit = int(*set.Spec.RevisionHistoryLimit)
	}
	inUse := map[string]bool{updateRev: true, set.Status.CurrentRevision: true}
	for _, p := range c.m.ownedPods(set.Namespace, set.UID) {
		inUse[p.Labels[ControllerRevisionHashLabel]] = true
	}
	var spare []*api.ControllerRevision
	for _, r := range owned {
		if !inUse[r.Name] {
			spare = append(spare, r)
		}
	}
	if len(spare) <= limit {
		return nil
	}
	sort.Slice(spare, func(i, j int) bool { return spare[i].Revision < spare[j].Revision })
	var errs []error
	for _, r := range spare[:len(spare)-limit] {
		err := c.m.st.Delete(ctx, "ControllerRevision", r.Namespace, r.Name, "")
		if err != nil && !errors.Is(err, api.ErrNotFound) {
			errs = append(errs, fmt.Errorf("prune revision %s/%s: %w", r.Namespace, r.Name, err))
			continue
		}
		c.revs.AssumeDeleted(r)
	}
	return errors.Join(errs...)
}
