package main

import "github.com/lapsehq/lapse"

func enforceProfiles(*lapse.Policy) error { return nil }
