package controllers_test

import (
	"github.com/flotilla-edge/flotilla/api"
	"github.com/flotilla-edge/flotilla/controlplane/store"
)

func storeList(sel api.Selector) store.ListOptions { return store.ListOptions{Selector: sel} }
