package store

import (
	"context"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapToSlog returns a zap logger, for etcd, that writes through h, so a
// member's log and etcd's come out in one format with one level control.
// etcd's debug and info chatter is dropped below minLevel.
func zapToSlog(h slog.Handler, minLevel zapcore.Level) *zap.Logger {
	return zap.New(&slogCore{handler: h, minLevel: minLevel})
}

// slogCore is a zapcore.Core that hands every entry to an slog.Handler.
type slogCore struct {
	handler  slog.Handler
	minLevel zapcore.Level
}

func (c *slogCore) Enabled(level zapcore.Level) bool {
	return level >= c.minLevel && c.handler.Enabled(context.Background(), slogLevel(level))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{handler: c.handler.WithAttrs(attrs(fields)), minLevel: c.minLevel}
}

func (c *slogCore) Check(entry zapcore.Entry, checked *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(entry.Level) {
		return checked.AddCore(entry, c)
	}
	return checked
}

func (c *slogCore) Write(entry zapcore.Entry, fields []zapcore.Field) error {
	record := slog.NewRecord(entry.Time, slogLevel(entry.Level), entry.Message, 0)
	record.AddAttrs(attrs(fields)...)
	return c.handler.Handle(context.Background(), record)
}

func (c *slogCore) Sync() error { return nil }

func slogLevel(level zapcore.Level) slog.Level {
	switch {
	case level >= zapcore.ErrorLevel:
		return slog.LevelError
	case level == zapcore.WarnLevel:
		return slog.LevelWarn
	case level == zapcore.InfoLevel:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// attrs turns zap fields into slog attributes through zap's own encoder,
// so every field type (errors, durations, objects) keeps its value.
func attrs(fields []zapcore.Field) []slog.Attr {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	out := make([]slog.Attr, 0, len(enc.Fields))
	for key, value := range enc.Fields {
		out = append(out, slog.Any(key, value))
	}
	return out
}
