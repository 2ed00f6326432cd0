// Package proxy holds the Cloudflare Worker; its Go tests run the real engine through the Worker in workerd.
package proxy
