package governance

import "time"

var timeUTC = time.UTC
