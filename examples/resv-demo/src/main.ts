console.log("drmkit demo: coming soon")
