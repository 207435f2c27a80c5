# Reference numbers for the effect-size intervals, the Holm adjustment and the Kruskal-Wallis
# test, computed with base R (stats) independently of the Python code under test.
# Run from this folder: Rscript effect_sizes_and_tests.R   (writes effect_sizes_and_tests.csv)
rows <- list()
add <- function(case, quantity, value) {
  rows[[length(rows) + 1]] <<- data.frame(case = case, quantity = quantity,
                                          value = if (is.character(value)) value else sprintf("%.15g", value))
}

# d_z with the exact noncentral-t interval (Steiger & Fouladi 1997; Lakens 2013, table 1 data:
# two movies rated by ten people). The limits are the noncentrality parameters for which the
# observed t is the 97.5% and 2.5% quantile, divided by sqrt(n).
movie1 <- c(9, 7, 8, 9, 8, 9, 9, 10, 9, 9)
movie2 <- c(9, 6, 7, 8, 7, 9, 8, 8, 8, 7)
dz_interval <- function(pre, post, level = 0.95) {
  d <- post - pre
  n <- length(d)
  t <- mean(d) / sd(d) * sqrt(n)
  ncp_for <- function(p) uniroot(function(ncp) pt(t, n - 1, ncp) - p, c(t - 15, t + 15),
                                 tol = 1e-13)$root
  c(estimate = mean(d) / sd(d), low = ncp_for(1 - (1 - level) / 2) / sqrt(n),
    high = ncp_for((1 - level) / 2) / sqrt(n))
}
dz <- dz_interval(movie2, movie1)
add("dz_lakens", "estimate", dz[["estimate"]])
add("dz_lakens", "conf_low", dz[["low"]])
add("dz_lakens", "conf_high", dz[["high"]])

# d_ppc2 (Morris 2008, Organ. Res. Methods 11:364): bias-corrected difference of the mean
# changes over the pooled pretest SD, variance from Morris's equation 25, normal interval.
dppc2 <- function(m_pre_t, m_post_t, sd_pre_t, n_t, m_pre_c, m_post_c, sd_pre_c, n_c, rho,
                  level = 0.95) {
  sd_pool <- sqrt(((n_t - 1) * sd_pre_t^2 + (n_c - 1) * sd_pre_c^2) / (n_t + n_c - 2))
  cp <- 1 - 3 / (4 * (n_t + n_c - 2) - 1)
  d <- cp * ((m_post_t - m_pre_t) - (m_post_c - m_pre_c)) / sd_pool
  v <- 2 * cp^2 * (1 - rho) * ((n_t + n_c) / (n_t * n_c)) * ((n_t + n_c - 2) / (n_t + n_c - 4)) *
    (1 + d^2 / (2 * (1 - rho) * ((n_t + n_c) / (n_t * n_c)))) - d^2
  z <- qnorm(0.5 + level / 2)
  c(estimate = d, low = d - z * sqrt(v), high = d + z * sqrt(v))
}
# Morris (2008), p. 370, with rho = 0.5.
morris <- dppc2(30.6, 38.5, 15.0, 20, 23.1, 19.7, 13.8, 20, rho = 0.5)
add("dppc2_morris", "estimate", morris[["estimate"]])
add("dppc2_morris", "conf_low", morris[["low"]])
add("dppc2_morris", "conf_high", morris[["high"]])
# From paired raw scores, rho pooled over the groups by Fisher z weighted by n - 3.
pre_t <- c(3.2, 3.8, 2.9, 4.1, 3.5, 3.0, 3.7, 4.4, 2.8, 3.6)
post_t <- c(3.9, 4.1, 3.5, 4.6, 3.9, 3.8, 4.0, 4.8, 3.1, 4.2)
pre_c <- c(3.4, 3.1, 3.9, 2.7, 3.6, 4.0, 3.3, 2.9, 3.8, 3.5, 3.0, 3.7)
post_c <- c(3.5, 3.3, 3.8, 3.0, 3.7, 4.1, 3.2, 3.1, 4.0, 3.6, 3.3, 3.6)
z <- c(atanh(cor(pre_t, post_t)), atanh(cor(pre_c, post_c)))
w <- c(length(pre_t) - 3, length(pre_c) - 3)
rho <- tanh(sum(w * z) / sum(w))
raw <- dppc2(mean(pre_t), mean(post_t), sd(pre_t), length(pre_t),
             mean(pre_c), mean(post_c), sd(pre_c), length(pre_c), rho)
add("dppc2_raw", "rho", rho)
add("dppc2_raw", "estimate", raw[["estimate"]])
add("dppc2_raw", "conf_low", raw[["low"]])
add("dppc2_raw", "conf_high", raw[["high"]])

# Holm's step-down adjustment.
p <- c(0.0002, 0.049, 0.012, 0.5, 0.03)
adjusted <- p.adjust(p, method = "holm")
for (i in seq_along(p)) add("holm", paste0("p_holm_", i), adjusted[i])

# Kruskal-Wallis (with the tie correction) of two stakeholder groups' ratings.
kw <- kruskal.test(list(school = c(5, 4, 4, 2), iro = c(1, 2, 2, 3)))
add("kruskal", "statistic", kw$statistic)
add("kruskal", "df", kw$parameter)
add("kruskal", "p_value", kw$p.value)

add("version", "R", paste(R.version$major, R.version$minor, sep = "."))
write.csv(do.call(rbind, rows), "effect_sizes_and_tests.csv", row.names = FALSE, quote = FALSE)
