module github.com/cyrusrepl/cyrusrepl

go 1.26.0
