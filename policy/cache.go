package policy

import (
	"container/list"
	"github.com/pgguard/pgguard/policy/sqltext"
	"hash/maphash"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// parseCache caches parse results by statement text: migrations and ORMs
// send the same statements again and again. It is split into shards, each
// an LRU list under its own mutex, so concurrent sessions rarely contend.
// Cached nodes are shared: rules must treat them as read-only.
type parseCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
	// maxText is the longest statement worth caching; a few huge
	// statements must not evict everything else or pin memory.
	maxText int
}

const cacheShards = 16

type cacheShard struct {
	mu    sync.Mutex
	max   int
	items map[string]*list.Element
	lru   list.List // front is most recently used
}

type cacheEntry struct {
	text string
	node *pg_query.Node
	err  error
}

func newParseCache(entries, maxText int) *parseCache {
	c := &parseCache{seed: maphash.MakeSeed(), maxText: maxText}
	per := max(entries/cacheShards, 1)
	for i := range c.shards {
		c.shards[i].max = per
		c.shards[i].items = make(map[string]*list.Element)
	}
	return c
}

// parse returns the parse of text, from the cache when possible.
func (c *parseCache) parse(text string, maxBytes int) (*pg_query.Node, error) {
	if c == nil || len(text) > c.maxText {
		return sqltext.ParseStatement(text, maxBytes)
	}
	sh := &c.shards[maphash.String(c.seed, text)%cacheShards]
	sh.mu.Lock()
	if el, ok := sh.items[text]; ok {
		sh.lru.MoveToFront(el)
		e := el.Value.(*cacheEntry)
		sh.mu.Unlock()
		return e.node, e.err
	}
	sh.mu.Unlock()
	node, err := sqltext.ParseStatement(text, maxBytes)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.items[text]; !ok {
		sh.items[text] = sh.lru.PushFront(&cacheEntry{text: text, node: node, err: err})
		for sh.lru.Len() > sh.max {
			old := sh.lru.Back()
			sh.lru.Remove(old)
			delete(sh.items, old.Value.(*cacheEntry).text)
		}
	}
	return node, err
}
