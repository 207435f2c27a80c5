# Reference numbers for the codebook drafter (dpo_eval.cli.inference), from R and psych:
# the Big Five inventory's agreeableness and conscientiousness items (psych::bfi, 2800 people;
# A1, C4 and C5 are reverse-keyed in psych's bfi.keys). Writes bfi_ac.csv (the items) and
# drafting_reference.csv (pairwise correlations, principal-component loadings, their varimax
# rotation without Kaiser normalisation (run to convergence: eps 1e-12), and the number of components parallel analysis keeps).
# Run in this folder: Rscript drafting_reference.R
suppressMessages(library(psych))
set.seed(20251127)
items <- c(paste0("A", 1:5), paste0("C", 1:5))
x <- bfi[, items]
write.csv(x, "bfi_ac.csv", row.names = FALSE, na = "")
r <- cor(x, use = "pairwise.complete.obs")
e <- eigen(r, symmetric = TRUE)
loadings <- e$vectors[, 1:2] %*% diag(sqrt(e$values[1:2]))
rotated <- unclass(varimax(loadings, normalize = FALSE, eps = 1e-12)$loadings)
pa <- fa.parallel(x, fa = "pc", n.iter = 40, plot = FALSE)
rows <- list()
add <- function(quantity, i, j, value) rows[[length(rows) + 1]] <<- data.frame(quantity = quantity, i = i, j = j, value = value)
for (i in seq_along(items)) for (j in seq_along(items)) add("correlation", i, j, r[i, j])
for (i in seq_along(items)) for (j in 1:2) {
  add("loading", i, j, loadings[i, j])
  add("varimax", i, j, rotated[i, j])
}
add("parallel_ncomp", 0, 0, pa$ncomp)
write.csv(do.call(rbind, rows), "drafting_reference.csv", row.names = FALSE)
