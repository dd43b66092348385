-- Report 004's dummy data, made once on the first `spillway up`: for every tenant login that
-- spillway created from the stack's secrets (user0, user1, ...; see databases.main.users), a
-- database user_databaseN with the report's table of 1,000 rows of five random integers, which
-- only that user may use. The tenant count is the stack file's (./tenants N rewrites it), so
-- this file has no number in it. One server-side loop, no round trips: 200 tenants take a few
-- seconds.
--
-- The users were granted the stack's own database when spillway created them; that grant is
-- taken back here (spillway does not give it again at later starts), so a tenant reaches its
-- own database and nothing else.

DELIMITER //
CREATE PROCEDURE create_tenant_databases()
BEGIN
  DECLARE done BOOLEAN DEFAULT FALSE;
  DECLARE tenant VARCHAR(80);
  DECLARE tenants CURSOR FOR SELECT name FROM tenant_users;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = TRUE;

  -- A copy first: the loop's GRANTs and REVOKEs write the grant tables the cursor would read.
  CREATE TEMPORARY TABLE tenant_users AS
    SELECT User AS name FROM mysql.global_priv WHERE Host = '%' AND User REGEXP '^user[0-9]+$';
  OPEN tenants;
  each_tenant: LOOP
    FETCH tenants INTO tenant;
    IF done THEN
      LEAVE each_tenant;
    END IF;
    SET @db = CONCAT('user_database', SUBSTRING(tenant, 5));
    SET @sql = CONCAT('CREATE DATABASE `', @db, '`');
    PREPARE s FROM @sql; EXECUTE s; DEALLOCATE PREPARE s;
    -- The report's table: an ID from 1 to 1,000 and five random integers (A to E).
    SET @sql = CONCAT('CREATE TABLE `', @db, '`.mytable (ID INT PRIMARY KEY, ',
                      'A INT NOT NULL, B INT NOT NULL, C INT NOT NULL, D INT NOT NULL, E INT NOT NULL)');
    PREPARE s FROM @sql; EXECUTE s; DEALLOCATE PREPARE s;
    SET @sql = CONCAT('INSERT INTO `', @db, '`.mytable SELECT seq, ',
                      'FLOOR(RAND() * 1000000), FLOOR(RAND() * 1000000), FLOOR(RAND() * 1000000), ',
                      'FLOOR(RAND() * 1000000), FLOOR(RAND() * 1000000) FROM seq_1_to_1000');
    PREPARE s FROM @sql; EXECUTE s; DEALLOCATE PREPARE s;
    SET @sql = CONCAT('GRANT ALL PRIVILEGES ON `', @db, '`.* TO ''', tenant, '''@''%''');
    PREPARE s FROM @sql; EXECUTE s; DEALLOCATE PREPARE s;
    SET @sql = CONCAT('REVOKE ALL PRIVILEGES ON `', DATABASE(), '`.* FROM ''', tenant, '''@''%''');
    PREPARE s FROM @sql; EXECUTE s; DEALLOCATE PREPARE s;
  END LOOP;
  CLOSE tenants;
  DROP TEMPORARY TABLE tenant_users;
END//
DELIMITER ;

CALL create_tenant_databases();
DROP PROCEDURE create_tenant_databases;
