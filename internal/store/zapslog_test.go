package store

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestZapToSlogKeepsLevelsAndFields(t *testing.T) {
	var out bytes.Buffer
	logger := zapToSlog(slog.NewTextHandler(&out, nil), zap.WarnLevel).With(zap.String("member", "m1"))
	logger.Info("dropped: below the minimum level")
	logger.Warn("slow fsync", zap.Duration("took", 1500*time.Millisecond), zap.Error(errors.New("disk busy")))
	logger.Error("lost quorum", zap.Int("voters", 1))
	got := out.String()
	for _, want := range []string{
		`level=WARN msg="slow fsync"`, `member=m1`, `took=1.5s`, `error="disk busy"`,
		`level=ERROR msg="lost quorum"`, `voters=1`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log = %q, want it to contain %q", got, want)
		}
	}
	if strings.Contains(got, "dropped") {
		t.Errorf("log = %q, want info entries dropped", got)
	}
}
